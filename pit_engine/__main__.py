from pit_engine.cli import main

raise SystemExit(main())
