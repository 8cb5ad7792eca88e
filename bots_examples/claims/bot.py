"""A damage-claim bot: the flow in claim_photo.yaml asks for a photo, this hook keeps it.

``claims.keep_photos`` downloads the photos of the answer (``conv.media``) into
:data:`PHOTO_DIR`, through the provider's media policy (its allow-list of hosts, its size
cap and timeout, see :mod:`convo.media`). What it could not keep it says in the slot
``photo_problem`` (the flow then tells the person), so an oversized or off-list photo
never costs the conversation. Run it with ``convo serve`` on an MMS provider (Telefonie, or
its simulator: README "MMS").
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from convo.bot import Bot, Conversation
from convo.media import MediaError, MediaTooLarge

PHOTO_DIR = Path("var/claims")
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif"}


def make_bot(photo_dir: Path = PHOTO_DIR) -> Bot:
    """The claims bot, keeping photos in ``photo_dir`` (created when needed)."""
    bot = Bot("claims")

    @bot.action
    async def keep_photos(conv: Conversation) -> None:
        """Save each picture of the answer as ``<number>-<n><ext>``; file names go in the
        slot ``photo_files``; the first failure's reason in ``photo_problem``."""
        await asyncio.to_thread(photo_dir.mkdir, parents=True, exist_ok=True)
        files: list[str] = []
        conv.slots["photo_problem"] = None
        for n, media in enumerate(conv.media, 1):
            if not media.downloadable:
                conv.slots["photo_problem"] = "not from the provider's media hosts"
                continue
            extension = EXTENSIONS.get(media.content_type or "", "")
            name = f"{conv.key.contact.lstrip('+')}-{n}{extension}"
            try:
                await media.save(photo_dir / name)
            except MediaTooLarge:
                conv.slots["photo_problem"] = "too large"
                continue
            except MediaError:
                conv.slots["photo_problem"] = "could not be fetched"
                continue
            files.append(name)
        conv.slots["photo_files"] = files

    return bot


bot = make_bot()
