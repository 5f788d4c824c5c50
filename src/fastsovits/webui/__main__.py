from fastsovits.webui.cli import main

raise SystemExit(main())
