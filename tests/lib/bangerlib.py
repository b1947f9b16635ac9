"""Client for bangerd's API over its Unix socket that validates every JSON
response against openapi.yaml (the contract)."""
import json
import os
import re
import urllib.parse

import jsonschema
import requests_unixsocket
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

with open(os.path.join(ROOT, "openapi.yaml")) as _f:
    SPEC = yaml.safe_load(_f)

_RESOLVER = jsonschema.RefResolver.from_schema(SPEC)
_PATHS = []
for _tmpl in SPEC["paths"]:
    _rx = "^" + re.sub(r"\{[^/]+\}", "[^/]+", _tmpl) + "$"
    _PATHS.append((_tmpl, re.compile(_rx)))
# Literal routes win over templated ones (/v1/vms/actions vs {name}).
_PATHS.sort(key=lambda p: p[0].count("{"))


class ContractError(AssertionError):
    pass


def _deref(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        assert ref.startswith("#/"), ref
        node = SPEC
        for part in ref[2:].split("/"):
            node = node[part]
        obj = node
    return obj


def response_schema(method, path, status):
    """The JSON schema openapi.yaml gives for this response, or raise."""
    for tmpl, rx in _PATHS:
        if rx.match(path):
            break
    else:
        raise ContractError("no path in openapi.yaml matches %s" % path)
    op = SPEC["paths"][tmpl].get(method.lower())
    if op is None:
        raise ContractError("openapi.yaml has no %s %s" % (method, tmpl))
    resp = op["responses"].get(str(status))
    if resp is None:
        raise ContractError("openapi.yaml lists no %d for %s %s"
                            % (status, method, tmpl))
    resp = _deref(resp)
    content = resp.get("content") or {}
    return content.get("application/json", {}).get("schema")


ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}


def validate(method, path, status, body):
    try:
        schema = response_schema(method, path, status)
    except ContractError:
        # Routes that do not exist answer with the error body (404/405).
        if status not in (404, 405):
            raise
        schema = ERROR_SCHEMA
    if schema is None:
        return
    jsonschema.Draft202012Validator(schema, resolver=_RESOLVER).validate(body)


class Client:
    def __init__(self, socket):
        self.socket = socket
        self.base = "http+unix://" + urllib.parse.quote(socket, safe="")
        self.session = requests_unixsocket.Session()

    def request(self, method, path, json_body=None, data=None, params=None,
                headers=None, validate_body=True, timeout=60, **kw):
        if json_body is not None:
            data = json.dumps(json_body)
            headers = dict(headers or {})
            headers.setdefault("Content-Type", "application/json")
        r = self.session.request(method, self.base + path, data=data,
                                 params=params, headers=headers,
                                 timeout=timeout, **kw)
        ctype = r.headers.get("Content-Type", "")
        if validate_body and ctype.startswith("application/json"):
            validate(method, path, r.status_code, r.json())
        elif validate_body and r.status_code not in (404, 405):
            # Still make sure the status is one the contract lists.
            response_schema(method, path, r.status_code)
        return r

    def get(self, path, validate=True, **kw):
        return self.request("GET", path, validate_body=validate, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json_body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, json_body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- convenience --
    def wait_op(self, op, timeout=60):
        deadline_wait = max(1, int(timeout))
        r = self.get("/v1/operations/%s" % op["id"],
                     params={"wait": deadline_wait})
        assert r.status_code == 200, r.text
        return r.json()

    def create_vm(self, name, **spec):
        body = {"name": name}
        body.update(spec)
        r = self.post("/v1/vms", body, params={"wait": 60})
        assert r.status_code == 200, r.text
        return r.json()

    def action(self, name, act, **params):
        params.setdefault("wait", 60)
        r = self.post("/v1/vms/%s/%s" % (name, act), params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def delete_vm(self, name, force=True):
        r = self.delete("/v1/vms/" + name,
                        params={"wait": 60, "force": "true" if force else "false"})
        return r
