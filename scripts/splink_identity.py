#!/usr/bin/env python3
"""Splink on a generated shopfuse project's raw customer and order exports: the peer that
`shopfuse bench identity` runs in the same command.

The settings are the ones of the issue that asked for the comparison (issue 30): exact name,
phone, e-mail, address, city and device comparisons with term-frequency adjustment, u from
random sampling, m and the prior by EM, links at match probability 0.9, clusters at 0.9. The
raw exports are normalised by hand first, as a Splink user would have to: NFKC, the （收）
note and spaces out of names, +86/0086 and punctuation out of phones, 號→号, province and city
prefixes and building/room suffixes out of addresses.

Usage: splink_identity.py PROJECT_DIR OUT.csv
Writes one row per account: platform, account_id, cluster_id. Prints a JSON summary.
"""

import csv
import json
import re
import sys
import time
import unicodedata
from pathlib import Path

import duckdb  # noqa: F401  (Splink's DuckDB backend needs it)
import pandas as pd
import pyarrow.parquet as pq
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on
from splink.backends.duckdb import DuckDBAPI

# Column of each field in each platform's export (the generator's presets).
CUSTOMERS = {
    "taobao": ("taobao/customers.csv", "gbk", ["会员名", "姓名", "手机", "邮箱", "地址", "城市"]),
    "jd": ("jd/customers.jsonl", "utf-8", ["pin", "realName", "mobile", "email", "address", "city"]),
    "amazon": (
        "amazon/customers.csv",
        "utf-8",
        ["customer-id", "buyer-name", "buyer-phone-number", "buyer-email", "ship-address", "ship-city"],
    ),
    "own_shop": ("own_shop/customers.parquet", None, ["account_id", "name", "phone", "email", "address", "city"]),
}
ORDERS = {
    "taobao": ("taobao/orders-*.csv", "gbk", ["买家会员名", "联系手机", "设备ID"]),
    "jd": ("jd/orders.jsonl", "utf-8", ["pin", "mobile", "deviceId"]),
    "amazon": ("amazon/orders.csv", "utf-8", ["buyer-id", "buyer-phone-number", "device-id"]),
    "own_shop": ("own_shop/orders.parquet", None, ["account_id", "phone", "device_id"]),
}
PREFIXES = ["北京市", "上海市", "广东省", "浙江省", "四川省", "湖北省", "江苏省"]


def read_table(path: Path, encoding, columns):
    """The export's rows (malformed lines skipped, as shopfuse quarantines them), with
    `columns` present (missing ones empty)."""
    if path.suffix == ".parquet":
        table = pq.read_table(path).to_pandas()
    elif path.suffix == ".jsonl":
        records = []
        for line in path.read_text(encoding=encoding).splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append({k: None if v is None else str(v) for k, v in record.items()})
        table = pd.DataFrame.from_records(records)
    else:
        table = pd.read_csv(path, encoding=encoding, dtype=str, keep_default_na=False,
                            on_bad_lines="skip", encoding_errors="replace")
    return table.reindex(columns=columns)


def frames(data: Path, spec, names):
    out = []
    for platform, (pattern, encoding, columns) in spec.items():
        for path in sorted(data.glob(pattern)):
            part = read_table(path, encoding, columns)
            part.columns = names
            part.insert(0, "platform", platform)
            out.append(part)
    return pd.concat(out, ignore_index=True)


def text(v):
    if v is None or (isinstance(v, float) and v != v):
        return None
    v = unicodedata.normalize("NFKC", str(v)).strip()
    return v or None


def name(v):
    v = text(v)
    return v and (re.sub(r"[\s（(]*收[）)]|\s+", "", v) or None)


def phone(v):
    v = text(v)
    if not v:
        return None
    digits = re.sub(r"\D", "", v)
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            digits = digits[len(prefix):]
    return digits or None


def address(v):
    v = text(v)
    if not v:
        return None
    v = v.replace("號", "号")
    for p in PREFIXES:
        v = v.replace(p, "", 1)
    v = re.sub(r"^[^区县]*?市", "", v)
    v = re.sub(r"\d+栋\d+室$", "", v)
    return v or None


def main(project: str, out: str):
    data = Path(project) / "data"
    started = time.time()
    customers = frames(data, CUSTOMERS, ["account_id", "name", "phone", "email", "address", "city"])
    orders = frames(data, ORDERS, ["account_id", "phone", "device"])
    customers = customers.drop_duplicates(["platform", "account_id"]).reset_index(drop=True)
    customers["name"] = customers["name"].map(name)
    customers["phone"] = customers["phone"].map(phone)
    customers["email"] = customers["email"].map(lambda v: text(v) and text(v).lower())
    customers["address"] = customers["address"].map(address)
    customers["city"] = customers["city"].map(text)
    orders["phone"] = orders["phone"].map(phone)
    orders["device"] = orders["device"].map(text)
    key = ["platform", "account_id"]
    order_phones = orders.dropna(subset=["phone"]).groupby(key)["phone"].agg(lambda s: sorted(set(s)))
    devices = orders.dropna(subset=["device"]).groupby(key)["device"].agg(lambda s: sorted(set(s)))
    customers = customers.join(order_phones.rename("order_phones"), on=key)
    customers = customers.join(devices.rename("devices"), on=key)
    customers["phones"] = [
        sorted({p for p in ([ph] if ph else []) + (list(op) if isinstance(op, list) else [])})
        for ph, op in zip(customers["phone"], customers["order_phones"])
    ]
    customers["devices"] = [d if isinstance(d, list) else [] for d in customers["devices"]]
    customers = customers.drop(columns=["order_phones"])
    customers.insert(0, "unique_id", range(len(customers)))
    read_seconds = time.time() - started

    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.ExactMatch("name").configure(term_frequency_adjustments=True),
            cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
            cl.ArrayIntersectAtSizes("phones", [1]),
            cl.ExactMatch("email").configure(term_frequency_adjustments=True),
            cl.ExactMatch("address").configure(term_frequency_adjustments=True),
            cl.ExactMatch("city"),
            cl.ArrayIntersectAtSizes("devices", [1]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("name"),
            block_on("phone"),
            block_on("email"),
            block_on("address"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(customers), settings, log_level=40)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("phone"), block_on("email")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("address"))
    predictions = linker.inference.predict(threshold_match_probability=0.9)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.9
    ).as_pandas_dataframe()
    seconds = time.time() - started

    cluster_of = dict(zip(clusters["unique_id"], clusters["cluster_id"]))
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["platform", "account_id", "cluster_id"])
        for uid, platform, account in zip(customers["unique_id"], customers["platform"], customers["account_id"]):
            w.writerow([platform, account, f"S{cluster_of.get(uid, f'single{uid}')}"])
    print(json.dumps({"accounts": len(customers), "seconds": seconds, "read_seconds": read_seconds,
                      "splink": __import__("splink").__version__}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
