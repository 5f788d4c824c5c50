"""The speech server (``fastsovits serve``): api_v2- and OpenAI-compatible routes over the batching engine.

Nothing here runs at import time; ``create_app(registry, config)`` builds the FastAPI app and
``serve(config, models)`` runs it with uvicorn. Needs the ``fastsovits[server]`` extra.
"""
