from touchpoint.cli import main

raise SystemExit(main())
