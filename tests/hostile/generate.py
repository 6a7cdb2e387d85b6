#!/usr/bin/env python3
"""Writes the hostile-input corpus: one JSON file per bad request.

Each case: {"name", "door": "direct" | "http-v2" | "rest-v1", "payload" (direct: the object;
API doors: the body string), "base64": bool (API doors: body is base64 of "payload_b64"),
"status": expected HTTP status, "field": the field the message must name}.
Run it to regenerate; the test reads the files, not this script.
"""
import base64, json, os

HERE = os.path.dirname(os.path.abspath(__file__))
K = "uploads/user-123/2026-11-28/receipt-001.png"
cases = []

def add(name, payload, field, door="direct", status=400, raw=None, b64=None):
    case = {"name": name, "door": door, "status": status, "field": field}
    if door == "direct":
        case["payload"] = payload
    else:
        if b64 is not None:
            case["base64"] = True
            case["payload"] = base64.b64encode(b64).decode()
        else:
            case["payload"] = raw if raw is not None else json.dumps(payload)
    cases.append(case)

def d(**kw):
    base = {"intentId": "i-1", "userId": "user-123", "images": [K]}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not DROP}

DROP = object()

# Missing and empty fields.
add("missing intentId", d(intentId=DROP), "intentId")
add("missing userId (direct)", d(userId=DROP), "userId")
add("missing images", d(images=DROP), "images")
for v in ["", " ", "\t"]:
    add(f"blank intentId {v!r}", d(intentId=v), "intentId")
add("empty userId", d(userId=""), "userId")
add("empty images", d(images=[]), "images")
add("empty image key", d(images=[""]), "images[0]")
add("empty modelId", d(modelId=""), "modelId")
add("empty object", {}, "intentId")
# Wrong types.
for name, v in [("number", 42), ("float", 1.5), ("bool", True), ("null", None), ("array", ["a"]), ("object", {"a": 1})]:
    add(f"intentId as {name}", d(intentId=v), "intentId")
    add(f"images as {name}", d(images=v), "images[0]" if name == "array" else "images")
for name, v in [("number", 7), ("null", None), ("array", [K]), ("object", {"k": K})]:
    add(f"image as {name}", d(images=[K, v]), "images[1]")
for name, v in [("number", 1), ("array", ["x"])]:
    add(f"userId as {name}", d(userId=v), "userId")
    add(f"modelId as {name}", d(modelId=v), "modelId")
    add(f"day as {name}", d(images=DROP, day=v), "day")
# Numbers, negative and huge.
for v in [-1, 0, 1e308, -1e308, 18446744073709551616, 3.14]:
    add(f"intentId number {v}", d(intentId=v), "intentId")
add("promptVersion number", d(promptVersion=-5), "promptVersion")
# Huge strings and arrays.
add("intentId 10k chars", d(intentId="x" * 10_000), "intentId")
add("userId 10k chars", d(userId="u" * 10_000), "userId")
add("key over 1024 bytes", d(images=["uploads/user-123/" + "k" * 1100]), "images[0]")
add("50001 images", d(images=[f"uploads/user-123/d/{i}.png" for i in range(50001)]), "images")
add("modelId 300 chars", d(modelId="m" * 300), "modelId")
# Control characters, confusables, odd unicode.
for name, v in [("NUL", "a\u0000b"), ("newline", "a\nb"), ("tab", "a\tb"), ("DEL", "a\u007fb"), ("bell", "\u0007x")]:
    add(f"intentId with {name}", d(intentId=v), "intentId")
    add(f"key with {name}", d(images=[f"uploads/user-123/{v}.png"]), "images[0]")
for name, v in [("cyrillic i", "\u0456ntent-1"), ("fullwidth", "\uff49ntent"), ("zero width space", "in\u200btent"),
                ("RTL override", "in\u202etent"), ("combining accent", "inte\u0301nt"), ("emoji", "intent-\U0001F600"),
                ("greek omicron", "intent-\u03bf"), ("BOM", "\ufeffintent")]:
    add(f"intentId {name}", d(intentId=v), "intentId")
add("userId confusable", d(userId="user\u2010123", images=["uploads/user\u2010123/a.png"]), "userId")
# Paths: traversal, absolute, other users, duplicates.
for name, k in [("dotdot", "uploads/user-123/../user-999/a.png"), ("leading dotdot", "../uploads/user-123/a.png"),
                ("absolute", "/uploads/user-123/a.png"), ("double slash", "uploads/user-123//a.png"),
                ("dot segment", "uploads/user-123/./a.png"), ("backslash", "uploads\\user-123\\a.png"),
                ("other user", "uploads/user-999/a.png"), ("prefix lookalike", "uploads/user-1234/a.png"),
                ("no prefix", "a.png"), ("other bucket area", "manifests/bj-x/j001/part-00001.jsonl"),
                ("prefix only", "uploads/user-123/"), ("trailing dotdot", "uploads/user-123/.."),
                ("encoded traversal is literal but outside", "uploads/user-999/%2e%2e/a.png"),
                ("url", "s3://bucket/uploads/user-123/a.png")]:
    # A well-formed key under another user's prefix is not the caller's: 403, not 400.
    foreign = name in ("other user", "prefix lookalike", "encoded traversal is literal but outside")
    add(f"key {name}", d(images=[k]), "images[0]", status=403 if foreign else 400)
add("duplicate keys", d(images=[K, K]), "images[1]")
add("duplicate later", d(images=[K, "uploads/user-123/b.png", K]), "images[2]")
add("userId with slash", d(userId="user-123/../x"), "userId")
add("userId traversal", d(userId=".."), "userId")
# Unknown values and fields.
add("unknown model", d(modelId="openai.gpt-4"), "modelId")
add("model lookalike", d(modelId="us.anthropic.claude-haiku-4-5-20251001-v1:0 "), "modelId")
add("unknown prompt", d(promptVersion="v2"), "promptVersion")
add("unknown field", d(priority="high"), "priority")
add("callback url field", d(callbackUrl="http://169.254.169.254/"), "callbackUrl")
add("both images and day", d(day="2026-11-28"), "images")
for v in ["2026-13-01", "2026-02-30", "28/11/2026", "tomorrow", "2026-11-28T00:00:00Z", ""]:
    add(f"bad day {v!r}", d(images=DROP, day=v), "day")
add("not an object: array", [1, 2], "body")
add("not an object: string", "intentId", "body")
add("not an object: number", 5, "body")
add("not an object: null", None, "body")
# Through the HTTP API: bodies that are not JSON, or not text.
add("malformed JSON", None, "body", door="http-v2", raw='{"intentId": "i-1", ')
add("trailing garbage", None, "body", door="http-v2", raw='{"intentId": "i-1"} xyz')
add("form encoded", None, "body", door="http-v2", raw="intentId=i-1&images=a")
add("plain text", None, "body", door="http-v2", raw="hello")
add("empty body", None, "body", door="http-v2", raw="")
add("whitespace body", None, "body", door="http-v2", raw="   \n")
add("JSON array body", None, "body", door="http-v2", raw="[]")
add("JSON string body", None, "body", door="http-v2", raw='"x"')
add("JSON null body", None, "body", door="http-v2", raw="null")
add("deeply nested", None, "body", door="http-v2", raw="[" * 5000 + "]" * 5000)
add("duplicate JSON keys", None, "intentId", door="http-v2", raw='{"intentId": "i-1", "intentId": "i-2", "images": ["%s"]}' % K)
add("base64 body that is not base64", None, "body", door="http-v2", raw="%%%not-base64%%%", b64=None)
cases[-1]["base64"] = True
add("base64 of invalid UTF-8", None, "body", door="http-v2", b64=b"\xff\xfe\xfa{}")
add("base64 of not JSON", None, "body", door="http-v2", b64=b"intentId=1")
add("base64 of bad key", None, "images[0]", door="http-v2", b64=json.dumps({"intentId": "i-1", "images": ["../x"]}).encode())
add("REST malformed JSON", None, "body", door="rest-v1", raw="{")
add("REST unknown field", None, "extra", door="rest-v1", raw=json.dumps({"intentId": "i-1", "images": [K], "extra": 1}))
add("REST other user's key", None, "images[0]", door="rest-v1", status=403, raw=json.dumps({"intentId": "i-1", "images": ["uploads/user-999/a.png"]}))
add("REST invalid UTF-8 via base64", None, "body", door="rest-v1", b64=b"\xc3\x28")
add("body userId cannot widen access", None, "images[0]", door="http-v2", status=403,
    raw=json.dumps({"intentId": "i-1", "userId": "user-999", "images": ["uploads/user-999/a.png"]}))

# Hardened edges: keys whose normalized copy would pass S3's 1,024 bytes, reserved identities.
long_key = "uploads/user-123/2026-11-28/" + "r" * (1015 - len("uploads/user-123/2026-11-28/"))
add("1,015-byte key (its normalized copy would pass 1,024)", d(images=[long_key]), "images[0]")
add("1,005-byte key", d(images=[long_key[:1005]]), "images[0]")
add("the pool's identity (direct)", d(userId="system.pool"), "userId")
add("another reserved identity (direct)", d(userId="system.ops"), "userId")

for f in os.listdir(HERE):
    if f.endswith(".json"):
        os.remove(os.path.join(HERE, f))
for i, c in enumerate(cases):
    with open(os.path.join(HERE, f"{i:03d}.json"), "w", encoding="utf-8") as fh:
        json.dump(c, fh, ensure_ascii=True)
        fh.write("\n")
print(len(cases), "cases")
