from convo.cli import main

raise SystemExit(main())
