from __future__ import annotations

import os
import sys

from web.cli import main

os.umask(0o077)  # the database, its WAL and SHM, the outbox and generated keys: readable by this user only
sys.exit(main())
