"""Cost of a model call from the price table in config (USD per million tokens)."""

from __future__ import annotations

from bot.core.config import ModelPrice
from bot.gateway.refs import ModelRef

MTOK = 1_000_000


def price_for(ref: ModelRef, prices: dict[str, ModelPrice]) -> ModelPrice | None:
    """The pinned reference's price, else the unversioned ``provider:model`` entry."""
    return prices.get(str(ref)) or prices.get(f"{ref.provider}:{ref.model}")


def cost_usd(price: ModelPrice | None, input_tokens: int, output_tokens: int) -> float:
    if price is None:
        return 0.0
    return (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / MTOK
