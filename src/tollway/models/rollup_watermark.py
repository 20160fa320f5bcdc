from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Integer
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base


class RollupWatermark(Base):
    """One row: where the worker's fold of stored events has got to (``meter.sql.pending``).

    A stored event that some folded meter counts gets ``events.tx``, the id of the transaction
    that stored it; every such event with ``tx >= next_tx`` is pending (not in the rollups, the
    period sets or the limits' counters yet), every one below is folded. The fold adds the events
    of a range of ``tx`` and moves ``next_tx`` past it in the same transaction, so a query's
    snapshot sees the rollups and the watermark that goes with them.

    ``tx_base`` (PostgreSQL) is added to transaction ids to make ``tx``: 0 until the database is
    restored into another cluster, whose transaction ids start again from the bottom; then
    ``meter.fold.rebase_tx`` (every start of ``tollway serve``, ``worker`` and ``migrate``) raises it
    so that the events stored from then on get a ``tx`` above every stored one.
    """

    __tablename__ = "rollup_watermark"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_tx: Mapped[int] = mapped_column(BigInteger)
    tx_base: Mapped[int] = mapped_column(BigInteger, server_default="0")

    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)
