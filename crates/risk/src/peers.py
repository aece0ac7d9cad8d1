"""shopfuse eval risk's peers, run in the venv `./run` sets up (PyOD, UGFraud).

  python peers.py pyod FEATURES.csv OUT.csv
      IForest and ECOD (PyOD) fitted on the feature table; one line per row: iforest,ecod.
  python peers.py fraudar EDGES.tsv ROWS COLS BLOCKS OUT.tsv
      UGFraud's FRAUDAR (logWeightedAveDegree, detectMultiple) on the bipartite graph;
      one line per block: density, then the rows, then the columns (space-separated).

Each prints one JSON line with its seconds.
"""
import json
import sys
import time

import numpy as np


def pyod(features, out):
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest

    x = np.loadtxt(features, delimiter=",", skiprows=1, ndmin=2)
    timings = {}
    scores = []
    for name, model in (("iforest", IForest(random_state=0)), ("ecod", ECOD())):
        t = time.perf_counter()
        model.fit(x)
        scores.append(model.decision_scores_)
        timings[name] = time.perf_counter() - t
    np.savetxt(out, np.column_stack(scores), delimiter=",", fmt="%.9g")
    print(json.dumps({"seconds": timings, "rows": int(x.shape[0])}))


def fraudar(edges, rows, cols, blocks, out):
    from scipy import sparse
    from UGFraud.Detector.Fraudar import detectMultiple, logWeightedAveDegree

    e = np.loadtxt(edges, dtype=np.int64, ndmin=2)
    m = sparse.coo_matrix(
        (np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(int(rows), int(cols))
    )
    m = (m > 0).astype("int").tocsc()
    t = time.perf_counter()
    found = detectMultiple(m, logWeightedAveDegree, int(blocks))
    seconds = time.perf_counter() - t
    with open(out, "w") as f:
        for (row_set, col_set), density in found:
            f.write(
                "%r\t%s\t%s\n"
                % (
                    float(density),
                    " ".join(str(r) for r in sorted(row_set)),
                    " ".join(str(c) for c in sorted(col_set)),
                )
            )
    print(json.dumps({"seconds": {"fraudar": seconds}, "blocks": len(found)}))


if __name__ == "__main__":
    if sys.argv[1] == "pyod":
        pyod(*sys.argv[2:4])
    elif sys.argv[1] == "fraudar":
        fraudar(*sys.argv[2:7])
    else:
        sys.exit("usage: peers.py pyod|fraudar ...")
