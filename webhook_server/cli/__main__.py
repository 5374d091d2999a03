"""``python -m webhook_server.cli`` is ``podium`` (``podium serve`` starts its worker so)."""

from webhook_server.cli import main

main()
