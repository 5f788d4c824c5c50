"""``fastsovits serve --ray``: the same HTTP surface as ``fastsovits serve``, on Ray Serve.

An ingress deployment (FastAPI, the plain server's routes) sends each request to an engine
deployment whose replicas each own one engine per resident model. A custom request router keeps
a model's requests on the replicas that hold it and a voice's requests on the replica that holds
its reference features; voices live in a store every replica reads. Needs the ``ray`` extra.
"""
