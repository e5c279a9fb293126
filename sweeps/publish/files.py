"""The ranking's files under results/<sweep id>/: ranking.md and ranking.parquet."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sweeps.judge.ranking import RankRow
from sweeps.judge.table import to_markdown


def write(
    ranking: list[RankRow], folder: Path, title: str, appendix: str = "", trust: str = ""
) -> dict[str, Path]:
    """ranking.md (the table, what it can claim, then any appendix such as follow-ups) and
    ranking.parquet."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / "ranking.md", "parquet": folder / "ranking.parquet"}
    text = to_markdown(ranking, title, trust)
    paths["markdown"].write_text(f"{text}\n{appendix}" if appendix else text)
    columns = {name: [getattr(r, name) for r in ranking] for name in RankRow.__dataclass_fields__}
    schema = pa.schema(
        [(name, _arrow_type(RankRow.__dataclass_fields__[name].type)) for name in columns]
    )
    pq.write_table(pa.table(columns, schema=schema), paths["parquet"])
    return paths


def _arrow_type(annotation) -> pa.DataType:
    return {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}[annotation]
