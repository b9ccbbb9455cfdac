"""Block Kit validation as Slack applies it: the limits that turn a post into ``invalid_blocks``.

Covers the block and element types the bot sends (section, header, context, divider, image,
actions, input; button, static_select, plain_text_input) with Slack's documented limits.
Errors read like Slack's own: ``must be less than 51 items [json-pointer:/blocks]``.
"""

from __future__ import annotations

from typing import Any

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
_BLOCK_TYPES = {"section", "header", "context", "divider", "image", "actions", "input", "rich_text", "file"}
_ELEMENT_TYPES = {"button", "static_select", "plain_text_input", "image", "overflow", "datepicker",
                  "checkboxes", "radio_buttons", "users_select", "conversations_select"}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def text(self, value: Any, pointer: str, limit: int, *, plain_only: bool = False) -> None:
        if not isinstance(value, dict):
            self.fail("must provide an object", pointer)
            return
        kind = value.get("type")
        if kind not in {"plain_text", "mrkdwn"} or (plain_only and kind != "plain_text"):
            self.fail(f"must be a valid enum value ({'plain_text' if plain_only else 'plain_text, mrkdwn'})",
                      f"{pointer}/type")
        text = value.get("text")
        if not isinstance(text, str) or not text:
            self.fail("must be more than 0 characters", f"{pointer}/text")
        elif len(text) > limit:
            self.fail(f"must be less than {limit + 1} characters", f"{pointer}/text")

    def length(self, value: Any, pointer: str, limit: int) -> None:
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            self.fail(f"must be less than {limit + 1} characters", pointer)

    def element(self, element: Any, pointer: str) -> None:
        if not isinstance(element, dict) or element.get("type") not in _ELEMENT_TYPES:
            self.fail("unsupported type", f"{pointer}/type")
            return
        kind = element["type"]
        self.length(element.get("action_id"), f"{pointer}/action_id", 255)
        if kind == "button":
            self.text(element.get("text"), f"{pointer}/text", 75, plain_only=True)
            self.length(element.get("value"), f"{pointer}/value", 2000)
            self.length(element.get("url"), f"{pointer}/url", 3000)
            if element.get("style") not in {None, "primary", "danger"}:
                self.fail("must be a valid enum value", f"{pointer}/style")
        elif kind == "static_select":
            options = element.get("options") or []
            if not 1 <= len(options) <= 100:
                self.fail("must provide between 1 and 100 items", f"{pointer}/options")
            for i, option in enumerate(options):
                self.option(option, f"{pointer}/options/{i}")
            if "initial_option" in element:
                self.option(element["initial_option"], f"{pointer}/initial_option")
                if element["initial_option"] not in options:
                    self.fail("must match one of the options", f"{pointer}/initial_option")
        elif kind == "plain_text_input":
            max_length = element.get("max_length", 3000)
            if not isinstance(max_length, int) or not 1 <= max_length <= 3000:
                self.fail("must be between 1 and 3000", f"{pointer}/max_length")
                max_length = 3000
            self.length(element.get("initial_value"), f"{pointer}/initial_value", max_length)

    def option(self, option: Any, pointer: str) -> None:
        if not isinstance(option, dict):
            self.fail("must provide an object", pointer)
            return
        self.text(option.get("text"), f"{pointer}/text", 75)
        self.length(option.get("value"), f"{pointer}/value", 150)

    def block(self, block: Any, pointer: str, surface: str) -> None:
        if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
            self.fail("unsupported type", f"{pointer}/type")
            return
        self.length(block.get("block_id"), f"{pointer}/block_id", 255)
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.fail("must provide text or fields", pointer)
            if "text" in block:
                self.text(block["text"], f"{pointer}/text", 3000)
            fields = block.get("fields") or []
            if len(fields) > 10:
                self.fail("must be less than 11 items", f"{pointer}/fields")
            for i, field in enumerate(fields):
                self.text(field, f"{pointer}/fields/{i}", 2000)
            if "accessory" in block:
                self.element(block["accessory"], f"{pointer}/accessory")
        elif kind == "header":
            self.text(block.get("text"), f"{pointer}/text", 150, plain_only=True)
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 10:
                self.fail("must provide between 1 and 10 items", f"{pointer}/elements")
            for i, element in enumerate(elements):
                if isinstance(element, dict) and element.get("type") == "image":
                    self.length(element.get("alt_text"), f"{pointer}/elements/{i}/alt_text", 2000)
                else:
                    self.text(element, f"{pointer}/elements/{i}", 3000)
        elif kind == "image":
            if not block.get("image_url") and not block.get("slack_file"):
                self.fail("must provide image_url or slack_file", pointer)
            self.length(block.get("image_url"), f"{pointer}/image_url", 3000)
            if not block.get("alt_text"):
                self.fail("must be more than 0 characters", f"{pointer}/alt_text")
            self.length(block.get("alt_text"), f"{pointer}/alt_text", 2000)
            if "title" in block:
                self.text(block["title"], f"{pointer}/title", 2000, plain_only=True)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 25:
                self.fail("must provide between 1 and 25 items", f"{pointer}/elements")
            for i, element in enumerate(elements):
                self.element(element, f"{pointer}/elements/{i}")
        elif kind == "input":
            if surface == "message":
                self.fail("input blocks are only allowed in views", f"{pointer}/type")
            self.text(block.get("label"), f"{pointer}/label", 2000, plain_only=True)
            if "hint" in block:
                self.text(block["hint"], f"{pointer}/hint", 2000, plain_only=True)
            self.element(block.get("element"), f"{pointer}/element")


def validate_blocks(blocks: Any, *, surface: str = "message") -> list[str]:
    """Slack's complaints about `blocks` (empty when it would accept them)."""
    checker = _Checker()
    if not isinstance(blocks, list):
        checker.fail("must provide an array", "/blocks")
        return checker.errors
    limit = MESSAGE_MAX_BLOCKS if surface == "message" else VIEW_MAX_BLOCKS
    if len(blocks) > limit:
        checker.fail(f"must be less than {limit + 1} items", "/blocks")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        checker.block(block, f"/blocks/{i}", surface)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is not None:
            if block_id in seen:
                checker.fail(f"duplicate block_id {block_id}", f"/blocks/{i}/block_id")
            seen.add(block_id)
    return checker.errors


def validate_view(view: Any) -> list[str]:
    """Slack's complaints about a modal view (empty when views.open would accept it)."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.fail("must provide an object", "/view")
        return checker.errors
    if view.get("type") != "modal":
        checker.fail("must be a valid enum value (modal)", "/view/type")
    checker.text(view.get("title"), "/view/title", 24, plain_only=True)
    for button in ("submit", "close"):
        if button in view:
            checker.text(view[button], f"/view/{button}", 24, plain_only=True)
    if any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or []) \
            and "submit" not in view:
        checker.fail("must provide submit when the view has input blocks", "/view/submit")
    checker.length(view.get("callback_id"), "/view/callback_id", 255)
    checker.length(view.get("private_metadata"), "/view/private_metadata", 3000)
    checker.length(view.get("external_id"), "/view/external_id", 255)
    return checker.errors + validate_blocks(view.get("blocks", []), surface="modal")
