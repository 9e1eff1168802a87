import sys, os, json, csv, math
sys.path.insert(0, "/work/shared/models/reference")
import numpy as np, cv2
import reference_infer as R

S_ocr = R.session("vn_plate_ocr_9x37_64x128.onnx")
S_det = R.session("vn_plate_det_yolo26n_640_e2e.onnx")
S_rec = R.session("ppocrv4_rec.onnx")
ALPHA = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"

def lp(a):
    out=[]
    for v in a:
        l=max(float(math.log(max(v,1e-30))),-16.0)
        out.append(round(l,3) if l>-4 else round(l,1))
    return out

def slot(crop):
    x = cv2.resize(crop, (128, 64), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
    probs = S_ocr.run(None, {"input": np.ascontiguousarray(x)[None]})[0][0]
    text = "".join(ALPHA[i] for i in probs.argmax(1)).rstrip("_")
    return text, [lp(r) for r in probs]

# CTC reduction: blank, 0-9A-Z, '-', '.', ' ', other
COLS = ["<blank>"] + list(ALPHA[:36]) + ["-", ".", " ", "<other>"]
def sym(ch):
    if ch in "Đđ": return "D"
    if len(ch) == 1 and ch.isascii() and ch.isalnum(): return ch.upper()
    if ch in "-‐‑–—－": return "-"
    if ch in ".·。．": return "."
    if ch in " 　": return " "
    return "<other>"
idx = {c: i for i, c in enumerate(COLS)}
M = np.zeros((6625, len(COLS)), np.float32)
M[0, idx["<blank>"]] = 1
for i, k in enumerate(R.PP_KEYS):
    M[i + 1, idx[sym(k)]] = 1
M[6624, idx[" "]] = 1

def ctc(crop, H=48, min_W=320):
    h, w = crop.shape[:2]
    W = max(min_W, int(math.ceil(H * w / h))); nw = min(W, int(math.ceil(H * w / h)))
    x = cv2.resize(crop, (nw, H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    x = (x / 255.0 - 0.5) / 0.5
    pad = np.zeros((H, W, 3), np.float32); pad[:, :nw] = x
    probs = R.sess_out = S_rec.run(None, {"x": pad.transpose(2, 0, 1)[None]})[0][0]
    red = probs @ M
    # greedy text on the full dictionary for reference
    ids = probs.argmax(1); out = []; prev = -1
    for i in ids:
        if i != 0 and i != prev: out.append(R.PP_LABELS[i])
        prev = i
    # keep only steps up to the last non-blank-dominant step + 2 to save space
    return "".join(out), [lp(r) for r in red]

res = {"alphabet": ALPHA, "ctc_columns": COLS, "slot": [], "ctc": []}
rows = list(csv.DictReader(open("/work/shared/footage/plate_crops/labels.csv")))
for r in rows:
    c = cv2.imread(os.path.join("/work/shared/footage/plate_crops", r["filename"]))
    t, m = slot(c)
    res["slot"].append({"id": r["filename"], "gt": r["plate_norm"], "argmax": t, "logp": m})
gt = list(csv.DictReader(open("/work/shared/footage/ground_truth.csv")))
for fn in sorted(os.listdir("/work/shared/footage/images")):
    img = cv2.imread(os.path.join("/work/shared/footage/images", fn))
    for p in R.run_vn_plate_det(S_det, img):
        c = R.crop(img, p["box_xyxy"])
        t, m = slot(c)
        # match ground truth by box overlap centre
        x1, y1, x2, y2 = p["box_xyxy"]; cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        g = ""; rows_ = ""
        for row in gt:
            if row["file"] != "images/" + fn or not row["plate_norm"]: continue
            if float(row["bbox_x1"]) - 5 <= cx <= float(row["bbox_x2"]) + 5 and float(row["bbox_y1"]) - 5 <= cy <= float(row["bbox_y2"]) + 5:
                g = row["plate_norm"]; rows_ = row["rows"]
        key = f"{fn}@{int(x1)},{int(y1)}"
        res["slot"].append({"id": key, "gt": g, "argmax": t, "logp": m})
        if rows_ == "1":
            ct, cm = ctc(c)
            res["ctc"].append({"id": key, "gt": g, "greedy": ct, "logp": cm})
json.dump(res, open(sys.argv[1], "w"), separators=(",", ":"))
print(len(res["slot"]), len(res["ctc"]))
for e in res["slot"]: print(e["id"][:40], e["gt"], e["argmax"])
for e in res["ctc"]: print(e["id"], e["gt"], e["greedy"], len(e["logp"]))
