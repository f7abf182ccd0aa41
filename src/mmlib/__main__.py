from mmlib.cli import main

raise SystemExit(main())
