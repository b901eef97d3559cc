from pli.cli import main

raise SystemExit(main())
