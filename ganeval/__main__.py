from ganeval.cli.main import main

raise SystemExit(main())
