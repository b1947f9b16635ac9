#!/usr/bin/python3
"""Write fc_schema.c, the request-body table of the Firecracker test double.

Usage: gen_schema.py SWAGGER [-o OUT]   (make fake-schema runs it)

The field set of every body, its types, required fields, enum values and
numeric bounds come from Firecracker's swagger.  What serde prints and the
swagger does not say comes from RUST below: the Rust names in error
messages, the declaration order ("expected one of ..." lists fields in it),
integer widths, which optional fields refuse null, and the string fields
Firecracker parses into richer types.  RUST may only order and annotate the
swagger's fields: a field it names that the swagger lacks, or one it leaves
out, stops the generator, so a new swagger cannot drift away unnoticed.
"""
import argparse
import re
import sys

import yaml

# The routes the test double serves that carry a body.
ROUTES = [
    ("PUT", "/actions"),
    ("PUT", "/boot-source"),
    ("PUT", "/drives/{drive_id}"),
    ("PATCH", "/drives/{drive_id}"),
    ("PUT", "/entropy"),
    ("PUT", "/logger"),
    ("PUT", "/machine-config"),
    ("PATCH", "/machine-config"),
    ("PUT", "/metrics"),
    ("PUT", "/mmds"),
    ("PATCH", "/mmds"),
    ("PUT", "/mmds/config"),
    ("PUT", "/network-interfaces/{iface_id}"),
    ("PATCH", "/network-interfaces/{iface_id}"),
    ("PUT", "/serial"),
    ("PUT", "/snapshot/create"),
    ("PUT", "/snapshot/load"),
    ("PATCH", "/vm"),
    ("PUT", "/vsock"),
]

# Per definition: the Rust struct (and the all-Option struct a PATCH of
# the same definition is read into), its field order, integer types beyond
# the rule in int_type(), optional fields that are not Option<T> (serde
# default: null is refused), enum type names, and string kinds.
RUST = {
    "BootSource": {
        "rust": "BootSourceConfig",
        "order": ["kernel_image_path", "initrd_path", "boot_args"],
    },
    "Drive": {
        "rust": "BlockDeviceConfig",
        "order": ["drive_id", "partuuid", "is_root_device", "cache_type", "is_read_only",
                  "path_on_host", "rate_limiter", "io_engine", "socket"],
        "not_null": ["cache_type"],
        "enums": {"cache_type": "CacheType", "io_engine": "FileEngineType"},
    },
    "EntropyDevice": {"rust": "EntropyDeviceConfig", "order": ["rate_limiter"]},
    "InstanceActionInfo": {
        "rust": "ActionBody",
        "order": ["action_type"],
        "enums": {"action_type": "ActionType"},
    },
    "Logger": {
        "rust": "LoggerConfig",
        "order": ["log_path", "level", "show_level", "show_log_origin", "module"],
        "kinds": {"log_path": "path"},
        # LevelFilter::from_str: any case, and "warn" as well as "warning".
        "fromstr": {"level": ("LevelFilter", ["Warn"])},
    },
    "MemoryBackend": {
        "rust": "MemBackendConfig",
        "order": ["backend_path", "backend_type"],
        "enums": {"backend_type": "MemBackendType"},
        "kinds": {"backend_path": "path"},
    },
    "MachineConfiguration": {
        "rust": "MachineConfig",
        "update": "MachineConfigUpdate",
        "order": ["vcpu_count", "mem_size_mib", "smt", "cpu_template", "track_dirty_pages",
                  "huge_pages"],
        "ints": {"vcpu_count": "u8", "mem_size_mib": "usize"},
        "not_null": ["smt", "track_dirty_pages", "huge_pages"],
        "enums": {"cpu_template": "StaticCpuTemplate", "huge_pages": "HugePageConfig"},
    },
    "Metrics": {
        "rust": "MetricsConfig",
        "order": ["metrics_path", "emit_id", "properties"],
        "not_null": ["emit_id"],
        "kinds": {"metrics_path": "path"},
    },
    "MmdsConfig": {
        "rust": "MmdsConfig",
        "order": ["version", "network_interfaces", "ipv4_address", "imds_compat"],
        "not_null": ["version", "imds_compat"],
        "enums": {"version": "MmdsVersion"},
        "kinds": {"ipv4_address": "ipv4"},
    },
    "NetworkInterface": {
        "rust": "NetworkInterfaceConfig",
        "order": ["iface_id", "host_dev_name", "guest_mac", "mtu", "rx_rate_limiter",
                  "tx_rate_limiter"],
        "ints": {"mtu": "u16"},
        "kinds": {"guest_mac": "mac"},
    },
    # NetworkOverride and VsockOverride: Firecracker reads them without
    # deny_unknown_fields; the table has no way to say so, and the double
    # refuses unknown fields in them as everywhere else.
    "NetworkOverride": {"rust": "NetworkOverride", "order": ["iface_id", "host_dev_name"]},
    "PartialDrive": {
        "rust": "BlockDeviceUpdateConfig",
        "order": ["drive_id", "path_on_host", "rate_limiter"],
    },
    "PartialNetworkInterface": {
        "rust": "NetworkInterfaceUpdateConfig",
        "order": ["iface_id", "rx_rate_limiter", "tx_rate_limiter"],
    },
    "RateLimiter": {"rust": "RateLimiterConfig", "order": ["bandwidth", "ops"]},
    "SerialDevice": {
        "rust": "SerialConfig",
        "order": ["serial_out_path", "rate_limiter"],
        "kinds": {"serial_out_path": "path"},
    },
    "SnapshotCreateParams": {
        "rust": "CreateSnapshotParams",
        "order": ["snapshot_type", "snapshot_path", "mem_file_path"],
        "not_null": ["snapshot_type"],
        "enums": {"snapshot_type": "SnapshotType"},
        "kinds": {"snapshot_path": "path", "mem_file_path": "path"},
    },
    # Firecracker's LoadSnapshotConfig: the fields with #[serde(default)]
    # refuse null; mem_file_path, mem_backend and vsock_override are Options.
    "SnapshotLoadParams": {
        "rust": "LoadSnapshotConfig",
        "order": ["snapshot_path", "mem_file_path", "mem_backend", "enable_diff_snapshots",
                  "track_dirty_pages", "resume_vm", "network_overrides", "vsock_override",
                  "clock_realtime", "huge_pages"],
        "not_null": ["enable_diff_snapshots", "track_dirty_pages", "resume_vm",
                     "network_overrides", "clock_realtime", "huge_pages"],
        "enums": {"huge_pages": "SnapshotLoadHugePageConfig"},
        "kinds": {"snapshot_path": "path", "mem_file_path": "path"},
    },
    "TokenBucket": {
        "rust": "TokenBucketConfig",
        "order": ["size", "one_time_burst", "refill_time"],
    },
    "Vm": {"rust": "Vm", "order": ["state"], "enums": {"state": "VmState"}},
    "Vsock": {
        "rust": "VsockDeviceConfig",
        "order": ["vsock_id", "guest_cid", "uds_path"],
        "ints": {"guest_cid": "u32"},
    },
    "VsockOverride": {"rust": "VsockOverride", "order": ["uds_path"]},
}

UINT_MAX = {"u8": "255", "u16": "65535", "u32": "4294967295", "u64": "UINT64_MAX",
            "usize": "UINT64_MAX"}
KINDS = {"path": "FC_PATH", "mac": "FC_MAC", "ipv4": "FC_IPV4"}


class SpecError(Exception):
    pass


class SpecLoader(yaml.SafeLoader):
    """YAML 1.1 without yes/no/on/off as booleans: the logger's level enum
    has a value Off, which the swagger means as a word."""


SpecLoader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                 re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))


def ref_name(node):
    ref = node.get("$ref", "")
    if not ref.startswith("#/definitions/"):
        return None
    return ref[len("#/definitions/"):]


def body_ref(spec, method, path):
    op = spec["paths"].get(path, {}).get(method.lower())
    if op is None:
        raise SpecError(f"{method} {path} is not in the swagger")
    for p in op.get("parameters", []):
        if p.get("in") == "body":
            name = ref_name(p["schema"])
            if name is None:
                raise SpecError(f"{method} {path}: the body is not a $ref")
            return name
    raise SpecError(f"{method} {path} has no body in the swagger")


def int_type(defn, field, prop, rust):
    t = rust.get("ints", {}).get(field)
    if t is None and prop.get("format") == "int64" and prop.get("minimum", -1) >= 0:
        t = "u64"
    if t not in UINT_MAX:
        raise SpecError(f"{defn}.{field}: integer without a Rust type in RUST")
    return t


def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Gen:
    def __init__(self, spec):
        self.spec = spec
        self.defs = spec["definitions"]
        self.emitted = []          # C names, in emission order
        self.out = []

    def resolve(self, prop):
        """A property with a $ref to a non-object definition is that definition."""
        name = ref_name(prop)
        if name and self.defs[name].get("type") != "object":
            merged = dict(self.defs[name])
            merged.update({k: v for k, v in prop.items() if k != "$ref"})
            return merged, None
        return prop, name

    def schema(self, defn):
        cname = defn
        if cname in self.emitted:
            return cname
        d = self.defs[defn]
        rust = RUST.get(defn)
        if rust is None:
            raise SpecError(f"{defn}: no entry in RUST")
        props = d.get("properties", {})
        if sorted(rust["order"]) != sorted(props):
            raise SpecError(f"{defn}: RUST order {rust['order']} is not the swagger's fields "
                            f"{sorted(props)}")
        if len(props) > 32:
            raise SpecError(f"{defn}: more than 32 fields")
        required = set(d.get("required", []))
        rows, values = [], []
        for field in rust["order"]:
            prop, sub = self.resolve(props[field])
            row = {"name": c_str(field), "flags": []}
            if field in required:
                row["flags"].append("FC_REQUIRED")
            elif field not in rust.get("not_null", []):
                row["flags"].append("FC_NULLABLE")
            if sub is not None:
                row["kind"] = "FC_OBJECT"
                row["object"] = "&" + self.schema(sub)
            elif prop.get("type") == "integer":
                t = int_type(defn, field, prop, rust)
                row.update(kind="FC_UINT", rust=c_str(t), rust_max=UINT_MAX[t])
                for bound, flag in (("minimum", "FC_HAS_MIN"), ("maximum", "FC_HAS_MAX")):
                    if bound in prop:
                        row["flags"].append(flag)
                        row[bound[:3]] = str(prop[bound])
            elif prop.get("type") == "boolean":
                row["kind"] = "FC_BOOL"
            elif prop.get("type") == "array" and ref_name(prop.get("items", {})):
                row["kind"] = "FC_OBJECTS"
                row["object"] = "&" + self.schema(ref_name(prop["items"]))
            elif prop.get("type") == "array":
                if prop.get("items", {}).get("type") != "string":
                    raise SpecError(f"{defn}.{field}: only arrays of strings or of "
                                    "definitions are supported")
                row["kind"] = "FC_STRINGS"
            elif prop.get("type") == "object":
                if prop.get("additionalProperties", {}).get("type") != "string":
                    raise SpecError(f"{defn}.{field}: only maps of strings are supported")
                row["kind"] = "FC_STRING_MAP"
            elif prop.get("type") == "string" and "enum" in prop:
                vname = f"{cname}_{field}"
                vals = [str(v) for v in prop["enum"]]
                if field in rust.get("fromstr", {}):
                    tname, extra = rust["fromstr"][field]
                    row.update(kind="FC_FROMSTR", rust=c_str(tname))
                    vals += extra
                elif field in rust.get("enums", {}):
                    row.update(kind="FC_ENUM", rust=c_str(rust["enums"][field]))
                else:
                    raise SpecError(f"{defn}.{field}: enum without a Rust type in RUST")
                values.append((vname, vals))
                row["values"] = vname
            elif prop.get("type") == "string":
                row["kind"] = KINDS.get(rust.get("kinds", {}).get(field), "FC_STRING")
            else:
                raise SpecError(f"{defn}.{field}: unsupported type {prop.get('type')}")
            rows.append(row)
        self.emit_schema(cname, defn, rust["rust"], rows, values)
        return cname

    def emit_schema(self, cname, defn, rust_name, rows, values):
        o = self.out
        for vname, vals in values:
            o.append(f"static const char *const {vname}[] = {{")
            o.append("\t" + ", ".join(c_str(v) for v in vals) + ", NULL")
            o.append("};")
        o.append(f"static const struct fc_field {cname}_fields[] = {{")
        for r in rows:
            flags = " | ".join(r["flags"]) or "0"
            o.append(f"\t{{ .name = {r['name']}, .kind = {r['kind']}, .flags = {flags}")
            extra = []
            if "rust" in r:
                extra.append(f".rust = {r['rust']}")
            if "rust_max" in r:
                extra.append(f".rust_max = {r['rust_max']}")
            for k in ("min", "max"):
                if k in r:
                    extra.append(f".{k} = {r[k]}")
            if "values" in r:
                extra.append(f".values = {r['values']}")
            if "object" in r:
                extra.append(f".object = {r['object']}")
            if extra:
                o[-1] += ",\n\t    " + ", ".join(extra)
            o[-1] += " },"
        o.append("};")
        o.append(f"static const struct fc_schema {cname} = {{")
        o.append(f"\t{c_str(defn)}, {c_str(rust_name)}, {cname}_fields,")
        o.append(f"\tsizeof({cname}_fields) / sizeof({cname}_fields[0])")
        o.append("};")
        o.append("")
        self.emitted.append(cname)

    def generate(self):
        bodies = []
        for method, path in ROUTES:
            defn = body_ref(self.spec, method, path)
            d = self.defs[defn]
            if "properties" not in d and d.get("additionalProperties") is True:
                bodies.append((method, path, "NULL", "NULL", "NULL"))
                continue
            # A PATCH that reuses its PUT's definition sends "a subset" of
            # it: serde reads it into an update struct whose every field is
            # an Option.
            update = "NULL"
            put = self.spec["paths"][path].get("put")
            if method == "PATCH" and put is not None and body_ref(self.spec, "PUT", path) == defn:
                if "update" not in RUST[defn]:
                    raise SpecError(f"{method} {path}: no update struct for {defn} in RUST")
                update = c_str(RUST[defn]["update"])
            cname = self.schema(defn)
            id_field = "NULL"
            if "{" in path:
                param = path[path.index("{") + 1:path.index("}")]
                if param in d.get("properties", {}):
                    id_field = c_str(param)
            bodies.append((method, path, "&" + cname, id_field, update))
        version = str(self.spec["info"]["version"])
        head = [
            "/* fc_schema.c - the request bodies of Firecracker's API, as a table.",
            " *",
            " * Generated by tests/fakes/fc/gen_schema.py from Firecracker's swagger,",
            f" * info.version {version}.  Do not edit: run `make fake-schema`.",
            " */",
            '#include "schema.h"',
            "",
            "#include <stdint.h>",
            "",
            f"const char fc_spec_version[] = {c_str(version)};",
            "",
        ]
        tail = ["const struct fc_body fc_bodies[] = {"]
        for method, path, schema, id_field, update in bodies:
            tail.append(f"\t{{ {c_str(method)}, {c_str(path)}, {schema}, {id_field}, {update} }},")
        tail.append("};")
        tail.append("const size_t fc_nbodies = sizeof(fc_bodies) / sizeof(fc_bodies[0]);")
        tail.append("")
        tail.append("const struct fc_schema *const fc_definitions[] = {")
        for cname in self.emitted:
            tail.append(f"\t&{cname},")
        tail.append("};")
        tail.append("const size_t fc_ndefinitions =")
        tail.append("    sizeof(fc_definitions) / sizeof(fc_definitions[0]);")
        return "\n".join(head + self.out + tail) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("swagger")
    ap.add_argument("-o", "--output", help="write here instead of stdout")
    args = ap.parse_args()
    with open(args.swagger) as f:
        spec = yaml.load(f, Loader=SpecLoader)
    try:
        text = Gen(spec).generate()
    except SpecError as e:
        sys.exit(f"gen_schema: {args.swagger}: {e}")
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
