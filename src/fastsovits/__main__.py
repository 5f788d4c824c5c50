from fastsovits.cli import main

raise SystemExit(main())
