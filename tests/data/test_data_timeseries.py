"""Time series from PyPI wheels: a hand-made wheel in a tmp wheelhouse stands in for PyPI (no network).

The last test (marked slow) fetches the real statsmodels and vega_datasets wheels and checks the lengths and
missing-value counts of the real series.
"""

import hashlib
import sys
import zipfile

import numpy as np
import pytest

from archlab.data.fetch import DATASETS, fetch, is_cached
from archlab.data.timeseries import (
    SERIES,
    SeriesSource,
    Wheel,
    extract_zip_member,
    list_series,
    load_series,
    read_series_csv,
    series_spec,
)
from archlab.errors import DataError

NAME = "tiny-series"
MEMBER = "fakepkg/datasets/tiny/tiny.csv"
WHEEL_NAME = "fakepkg-1.0-py3-none-any.whl"
# Six weekly points; the fourth is missing (as co2 has missing weeks) and lies halfway between 3.0 and 5.0.
CSV = b"date,value\n19580329,1.0\n19580405,2.0\n19580412,3.0\n19580419,\n19580426,5.0\n19580503,6.0\n"


def _write_wheel(folder, csv_bytes=CSV):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / WHEEL_NAME
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(MEMBER, csv_bytes)
        wheel.writestr("fakepkg/__init__.py", b"")
    return path


def _source(wheel_path, **changes):
    fields = dict(
        name=NAME,
        description="tiny weekly test series",
        wheel=Wheel("fakepkg", "1.0", WHEEL_NAME, hashlib.sha256(wheel_path.read_bytes()).hexdigest()),
        member=MEMBER,
        filename="tiny.csv",
        md5=hashlib.md5(CSV).hexdigest(),
        layout="columns",
        time_column="date",
        time_format="yyyymmdd",
        value_columns=("value",),
        frequency="W-SAT",
        period=2,
    )
    fields.update(changes)
    return SeriesSource(**fields)


def _register(monkeypatch, source):
    monkeypatch.setitem(SERIES, source.name, source)
    monkeypatch.setitem(DATASETS, source.name, series_spec(source))
    return source


@pytest.fixture
def wheelhouse(tmp_path, monkeypatch):
    folder = tmp_path / "wheelhouse"
    wheel = _write_wheel(folder)
    monkeypatch.setenv("ARCHLAB_WHEELHOUSE", str(folder))
    return wheel


def test_series_is_read_from_the_wheel_verified_and_gaps_are_filled(wheelhouse, cache_dir, monkeypatch):
    _register(monkeypatch, _source(wheelhouse))
    series = load_series(NAME, cache_dir)
    assert is_cached(NAME, cache_dir)
    assert (cache_dir / NAME / "tiny.csv").read_bytes() == CSV, "the cache keeps the upstream bytes"
    assert sorted(p.name for p in cache_dir.iterdir()) == [NAME], "no temp folder is left"
    assert len(series) == 6 and series.values.shape == (6, 1) and series.values.dtype == np.float32
    np.testing.assert_allclose(series.values[:, 0], [1, 2, 3, 4, 5, 6])  # linear interpolation
    assert series.missing == 1 and series.observed[:, 0].tolist() == [True, True, True, False, True, True]
    assert series.timestamps[0] == np.datetime64("1958-03-29") and series.timestamps.dtype == "datetime64[s]"
    assert np.all(np.diff(series.timestamps) == np.timedelta64(7, "D"))
    assert (series.columns, series.frequency, series.period) == (("value",), "W-SAT", 2)
    np.testing.assert_array_equal(series.column("value"), series.values[:, 0])
    with pytest.raises(DataError, match="no column"):
        series.column("co2")


def test_wheel_with_wrong_sha256_is_refused(wheelhouse, cache_dir, monkeypatch):
    source = _source(wheelhouse)
    _register(monkeypatch, _source(wheelhouse, wheel=Wheel("fakepkg", "1.0", WHEEL_NAME, "0" * 64)))
    with pytest.raises(DataError, match="sha256"):
        fetch(NAME, cache_dir, quiet=True)
    assert list(cache_dir.iterdir()) == [] and source.wheel.sha256 != "0" * 64


def test_csv_with_wrong_md5_is_refused(wheelhouse, cache_dir, monkeypatch):
    _register(monkeypatch, _source(wheelhouse, md5="f" * 32))
    with pytest.raises(DataError, match="Checksum mismatch for tiny.csv"):
        load_series(NAME, cache_dir)
    assert list(cache_dir.iterdir()) == []


def _fake_python(folder, script):
    folder.mkdir()
    tool = folder / "python"
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    return tool


def test_pip_download_is_asked_for_exactly_the_pinned_wheel(tmp_path, cache_dir, monkeypatch):
    source = _register(monkeypatch, _source(_write_wheel(tmp_path / "pypi")))
    monkeypatch.delenv("ARCHLAB_WHEELHOUSE", raising=False)
    # A stand-in for `python -m pip download ... --dest DIR REQ`: log the arguments, copy the wheel to DIR.
    log = tmp_path / "args.txt"
    script = (f'echo "$@" > {log}\nwhile [ "$1" != "--dest" ]; do shift; done\n'
              f'cp {tmp_path / "pypi" / WHEEL_NAME} "$2"\n')
    monkeypatch.setattr(sys, "executable", str(_fake_python(tmp_path / "bin", script)))
    assert len(load_series(NAME, cache_dir)) == 6
    args = log.read_text().split()
    assert args[:3] == ["-m", "pip", "download"] and args[-1] == "fakepkg==1.0"
    assert "--no-deps" in args and args[args.index("--only-binary") + 1] == ":all:"
    assert source.wheel.requirement == "fakepkg==1.0"


def test_missing_pip_is_named(tmp_path, cache_dir, monkeypatch):
    _register(monkeypatch, _source(_write_wheel(tmp_path / "pypi")))
    monkeypatch.delenv("ARCHLAB_WHEELHOUSE", raising=False)
    script = "echo '/usr/bin/python: No module named pip' >&2\nexit 1\n"
    monkeypatch.setattr(sys, "executable", str(_fake_python(tmp_path / "bin", script)))
    with pytest.raises(DataError) as info:
        fetch(NAME, cache_dir, quiet=True)
    assert "No module named pip" in str(info.value) and "ensurepip" in str(info.value)
    assert list(cache_dir.iterdir()) == []


def test_year_by_month_table_is_flattened_in_time_order(tmp_path):
    months = ",".join(f"{m:.1f}" for m in range(12))
    path = tmp_path / "wide.csv"
    path.write_text("YEAR,JAN,FEB,MAR,APR,MAY,JUN,JUL,AUG,SEP,OCT,NOV,DEC\n"
                    f"1950,{months}\n1951,{','.join(f'{12 + m}' for m in range(12))}\n")
    source = _source(_write_wheel(tmp_path / "w"), name="wide", layout="year-by-month", time_column="YEAR",
                     time_format="year", value_columns=(), frequency="MS", period=12)
    series = read_series_csv(path, source)
    np.testing.assert_array_equal(series.values[:, 0], np.arange(24))
    assert series.timestamps[0] == np.datetime64("1950-01-01") and series.timestamps[13] == np.datetime64("1951-02-01")
    assert series.columns == ("wide",) and series.missing == 0


def test_quoted_yearly_table_and_iso_timestamps(tmp_path):
    yearly = tmp_path / "yearly.csv"
    yearly.write_text('"YEAR","SUNACTIVITY"\n1700.0,5.0\n1701.0,11.0\n')
    source = _source(_write_wheel(tmp_path / "w"), time_column="YEAR", time_format="year",
                     value_columns=("SUNACTIVITY",))
    series = read_series_csv(yearly, source)
    assert series.values[:, 0].tolist() == [5.0, 11.0] and str(series.timestamps[1])[:4] == "1701"
    hourly = tmp_path / "hourly.csv"  # as in vega's files: an hour is absent (there, the switch to DST)
    hourly.write_text("date,temp\n2010/03/14 01:00,39.0\n2010/03/14 02:00,40.0\n2010/03/14 04:00,42.0\n")
    source = _source(_write_wheel(tmp_path / "w"), time_format="iso", value_columns=("temp",), step="1h")
    series = read_series_csv(hourly, source)
    assert np.all(np.diff(series.timestamps) == np.timedelta64(1, "h")) and len(series) == 4
    assert series.values[:, 0].tolist() == [39.0, 40.0, 41.0, 42.0] and series.missing == 1
    hourly.write_text("date,temp\n2010/03/14 01:00,39.0\n2010/03/14 02:30,40.0\n")
    with pytest.raises(DataError, match="regular grid"):
        read_series_csv(hourly, source)
    broken = tmp_path / "broken.csv"
    broken.write_text("date,other\n19580329,1\n")
    with pytest.raises(DataError, match="Could not parse"):
        read_series_csv(broken, _source(_write_wheel(tmp_path / "w")))


def test_zip_member_paths_are_checked(tmp_path):
    wheel = _write_wheel(tmp_path / "w")
    with pytest.raises(DataError, match="suspicious"):
        extract_zip_member(wheel, "../etc/passwd", tmp_path / "x")
    with pytest.raises(DataError, match="lacks"):
        extract_zip_member(wheel, "fakepkg/other.csv", tmp_path / "x")


def test_real_series_are_registered_with_pinned_checksums(cache_dir):
    assert {"co2", "sunspots", "elnino", "seattle-temps", "sf-temps", "seattle-weather"} <= set(list_series())
    for name in list_series():
        source, spec = SERIES[name], DATASETS[name]
        assert len(source.wheel.sha256) == 64 and len(source.md5) == 32
        assert spec.files == {"series": (source.filename, source.md5)} and source.wheel.requirement in spec.source
    with pytest.raises(DataError, match="not a time series"):
        load_series("mnist", cache_dir)
    with pytest.raises(DataError, match="Unknown data set"):
        load_series("nile", cache_dir)
    assert not cache_dir.exists(), "looking names up touches no file"


REAL = {  # name: (points, features, missing values, period)
    "co2": (2284, 1, 59, 52),
    "sunspots": (309, 1, 0, 11),
    "elnino": (732, 1, 0, 12),
    "seattle-temps": (8760, 1, 1, 24),  # 8,759 rows; the DST hour 2010-03-14 03:00 is absent
    "sf-temps": (8760, 1, 1, 24),
    "seattle-weather": (1461, 4, 0, 365),
}


@pytest.mark.slow
def test_real_series_from_the_pypi_wheels(tmp_path_factory, monkeypatch):
    monkeypatch.delenv("ARCHLAB_WHEELHOUSE", raising=False)
    cache = tmp_path_factory.mktemp("archlab-series")
    for name, (points, features, missing, period) in REAL.items():
        series = load_series(name, cache)
        assert series.values.shape == (points, features), name
        assert (series.missing, series.period) == (missing, period), name
        assert np.isfinite(series.values).all() and np.all(np.diff(series.timestamps) > np.timedelta64(0)), name
