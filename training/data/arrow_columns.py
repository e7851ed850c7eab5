"""Arrow -> numpy conversion for training columns: scalars stay 1-D, fixed-length lists become 2-D."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class ColumnError(ValueError):
    """A column cannot become a rectangular tensor (nulls, ragged lists, strings); names it and where."""


def column_to_numpy(col: pa.ChunkedArray | pa.Array, name: str, where: str) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count:
        raise ColumnError(f"{where}: column {name!r} has {arr.null_count} null value(s); training columns must be "
                          "non-null")
    t = arr.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        n = len(arr)
        if n == 0:
            return np.zeros((0, 0), dtype=t.value_type.to_pandas_dtype())
        lengths = pc.list_value_length(arr).to_numpy()
        if lengths.min() != lengths.max():
            raise ColumnError(f"{where}: column {name!r} holds lists of lengths {int(lengths.min())}.."
                              f"{int(lengths.max())}; the trainer needs one fixed length per table")
        values = arr.flatten()
        if values.null_count:
            raise ColumnError(f"{where}: column {name!r} has null elements inside its lists")
        return values.to_numpy(zero_copy_only=False).reshape(n, int(lengths[0]))
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        raise ColumnError(f"{where}: column {name!r} is a string column and cannot become a tensor")
    return arr.to_numpy(zero_copy_only=False)


def table_to_numpy(table: pa.Table, columns: Sequence[str], where: str) -> dict[str, np.ndarray]:
    return {c: column_to_numpy(table.column(c), c, where) for c in columns}
