from pit_gui.app import main

raise SystemExit(main())
