# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster's storage report: every host's storage_info merged into one tree. Private.

``merge()`` takes the storage_info result of each host (None, a failed or an unreachable
result for a host that gave none) and returns one tree like flexVDI's tree view: image
storages with their volumes (type, status per host, space, capabilities, images), media
storages (status per host, last operation, files) and direct storages per host. Each object
carries the problems found on it, and objects with problems come first; ``problems`` lists
them all. ``text()`` renders the tree for a terminal, ``html()`` as a self-contained page
(inline CSS, no script, nothing fetched).
"""

from __future__ import annotations

import html as _html

from ansible.module_utils.common.text.formatters import bytes_to_human

DEFAULT_THRESHOLD = 10
ONLINE = "online"
UNKNOWN = "unknown"  # the host gave no report
MISSING = "missing"  # the host is one of the object's, and does not have it


def size(value):
    return "?" if value is None else bytes_to_human(value)


def yes_no(value):
    return "?" if value is None else ("yes" if value else "no")


def _reason(result):
    """Why a host's result is not a report, or '' when it is one."""
    if not isinstance(result, dict) or not result:
        return "no storage report (the host was not reached, or storage_info did not run)"
    if result.get("unreachable"):
        return "unreachable: " + str(result.get("msg") or "no message").strip()
    if result.get("failed"):
        return "storage_info failed: " + str(result.get("msg") or "no message").strip()
    if "image_storages" not in result:
        return "no storage report (not a storage_info result)"
    return ""


def _ordered_union(lists):
    found = []
    for items in lists:
        for item in items or []:
            if item not in found:
                found.append(item)
    return found


def merge(results, threshold=DEFAULT_THRESHOLD):
    """One tree of the cluster from ``results``: {inventory hostname: storage_info result}."""
    if not isinstance(results, dict):
        raise TypeError("storage_report expects a mapping of inventory hostname to storage_info result")
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"storage_report_free_threshold {threshold!r} is not a number: set a percentage") from None
    if not 0 <= threshold <= 100:
        raise ValueError(f"storage_report_free_threshold {threshold:g} is not a percentage: set it from 0 to 100")
    hosts = list(results)
    reports, host_problems = {}, []
    for host in hosts:
        reason = _reason(results[host])
        if reason:
            host_problems.append(f"host {host}: {reason}")
        else:
            reports[host] = results[host]
    image = _image_storages(hosts, reports, threshold)
    media = _media_storages(hosts, reports)
    direct = _direct_storages(hosts, reports)
    san = _san_luns(hosts, reports)
    shares = _media_shares(reports)
    problems = list(host_problems)
    for storage in image:
        problems += storage["problems"]
        for volume in storage["volumes"]:
            problems += volume["problems"]
    for group in (media, direct, san, shares):
        for item in group:
            problems += item["problems"]
    objects = len(image) + sum(len(s["volumes"]) for s in image) + len(media) + len(direct) + len(san)
    return {
        "hosts": hosts,
        "host_problems": host_problems,
        "threshold": threshold,
        "image_storages": image,
        "media_storages": media,
        "direct_storages": direct,
        "san_luns": san,
        "media_shares": shares,
        "problems": problems,
        "summary": {"hosts": len(hosts), "objects": objects, "problems": len(problems)},
    }


def troubled(item):
    """Whether ``item`` or anything below it (a storage's volumes) has a problem."""
    return bool(item["problems"]) or any(v["problems"] for v in item.get("volumes") or [])


def _problems_first(items):
    return sorted(items, key=lambda item: not troubled(item))


def _by_name(reports, kind):
    """{name: {host: object}} of ``kind`` over the reports, names in the order first seen."""
    found = {}
    for host, report in reports.items():
        for item in report.get(kind) or []:
            found.setdefault(item["name"], {})[host] = item
    return found


def _declared_hosts(name, what, seen):
    """The object's hosts (as its hosts report them) and a problem when they disagree."""
    lists = [tuple(item.get("hosts") or ()) for item in seen.values()]
    problems = []
    if len(set(lists)) > 1:
        words = "; ".join(
            "{} lists {}".format(h, ", ".join(item.get("hosts") or []) or "none") for h, item in seen.items()
        )
        problems.append(f"{what} {name}: its hosts differ between hosts ({words}): converge it (site.yml)")
    return _ordered_union(lists), problems


def _image_storages(hosts, reports, threshold):
    tree = []
    for name, seen in _by_name(reports, "image_storages").items():
        declared, problems = _declared_hosts(name, "image storage", seen)
        for host in declared:
            if host in reports and host not in seen:
                problems.append(
                    f"image storage {name} is not registered on host {host}, one of its hosts: converge it (site.yml)"
                )
        volumes = {}
        for host, storage in seen.items():
            for volume in storage.get("volumes") or []:
                volumes.setdefault(volume["name"], {})[host] = volume
        merged = [
            _volume(name, vname, per_host, declared, reports, seen, threshold) for vname, per_host in volumes.items()
        ]
        tree.append({"name": name, "hosts": declared, "problems": problems, "volumes": _problems_first(merged)})
    return _problems_first(tree)


def _status_of(host, reports, seen, per_host):
    if host not in reports:
        return UNKNOWN, ""
    if host not in seen or host not in per_host:
        return MISSING, ""
    return per_host[host].get("status") or UNKNOWN, per_host[host].get("message") or ""


def _volume(storage, name, per_host, declared, reports, seen, threshold):
    first = next(iter(per_host.values()))
    where = f"volume {storage}/{name}"
    status, messages, problems = {}, {}, []
    for host in declared:
        status[host], messages[host] = _status_of(host, reports, seen, per_host)
        if status[host] == MISSING and host in seen:
            problems.append(f"{where} is missing on host {host}, one of the storage's hosts: converge it (site.yml)")
        elif status[host] not in (ONLINE, UNKNOWN, MISSING):
            detail = f": {messages[host]}" if messages[host] else ""
            problems.append(f"{where} is {status[host]} on host {host}{detail}")
    online = [per_host[h] for h in declared if status[h] == ONLINE]
    for host in declared:
        if status[host] == ONLINE and per_host[host].get("qemu_writable") is False:
            problems.append(f"{where}: the qemu user cannot write it on host {host}: {messages[host]}")
    measured = [(v["free"], v["size"], h) for h, v in per_host.items() if status.get(h) == ONLINE and v.get("size")]
    free = size_ = percent = lowest = None
    if measured:
        free, size_, worst = min(measured, key=lambda m: (m[0] or 0) / m[1])
        # Hosts with a disk each (shared: false) see different space: name the one with the least.
        lowest = worst if len({m[:2] for m in measured}) > 1 else None
        percent = round(100.0 * (free or 0) / size_, 1)
        if percent < threshold:
            problems.append(
                f"{where} has {size(free)} free of {size(size_)} ({percent:g}%) on host {worst}, under {threshold:g}%"
            )
    problems += _open_volume(where, per_host)
    images = sorted({image["name"] for v in online for image in v.get("images") or []})
    return {
        "name": name,
        "type": first.get("type", "external"),
        "mount_point": first.get("mount_point"),
        "status": status,
        "messages": {h: m for h, m in messages.items() if m},
        "size": size_,
        "free": free,
        "free_percent": percent,
        "lowest_on": lowest,
        "fallocate": online[0].get("fallocate") if online else None,
        "reflink": online[0].get("reflink") if online else None,
        "images": images,
        "auth_allow": next((v["auth_allow"] for v in per_host.values() if v.get("auth_allow") is not None), None),
        "problems": problems,
    }


def _open_volume(where, per_host):
    """A Gluster volume whose auth.allow lets every address mount it (as any of its hosts read it)."""
    seen = sorted(h for h, v in per_host.items() if v.get("auth_allow") == ["*"])
    if not seen:
        return []
    return [
        f"{where} is open to every address (auth.allow *, read on {', '.join(seen)}): any machine that reaches its "
        "bricks can mount the guests' disks; converge it without auth.allow in its options to allow only its hosts"
    ]


def _last_operation(seen):
    latest = None
    for host, item in seen.items():
        operation = item.get("last_operation")
        if isinstance(operation, dict) and (latest is None or str(operation.get("time")) > str(latest.get("time"))):
            latest = dict(operation, host=host)
    return latest


def _failed(operation):
    return bool(operation) and (operation.get("ok") is False or bool(operation.get("failed")))


def _media_storages(hosts, reports):
    tree = []
    for name, seen in _by_name(reports, "media_storages").items():
        declared, problems = _declared_hosts(name, "media storage", seen)
        first = next(iter(seen.values()))
        status, messages = {}, {}
        for host in declared:
            status[host], messages[host] = _status_of(host, reports, seen, seen)
            if status[host] == MISSING:
                problems.append(
                    f"media storage {name} is missing on host {host}, one of its hosts: converge it (site.yml)"
                )
            elif status[host] not in (ONLINE, UNKNOWN):
                detail = f": {messages[host]}" if messages[host] else ""
                problems.append(f"media storage {name} is {status[host]} on host {host}{detail}")
        last = _last_operation(seen)
        for host, item in seen.items():
            if _failed(item.get("last_operation")):
                problems.append(
                    f"media storage {name}: the last operation failed on host {host}: {item['last_operation'].get('message')}"
                )
        files = {}
        for host in declared:
            if status[host] == ONLINE:
                for entry in seen[host].get("files") or []:
                    files.setdefault(entry["name"], entry)
        tree.append(
            {
                "name": name,
                "server": first.get("server"),
                "share": first.get("share"),
                "transport": first.get("transport"),
                "hosts": declared,
                "status": status,
                "messages": {h: m for h, m in messages.items() if m},
                "last_operation": last,
                "files": [files[n] for n in sorted(files)],
                "problems": problems,
            }
        )
    return _problems_first(tree)


def _media_shares(reports):
    """The media shares the hosts serve (role media_server); one open to every address is a problem."""
    found = []
    for host, report in reports.items():
        for share in report.get("media_shares") or []:
            allow = share.get("hosts_allow") or ["*"]
            problems = []
            if "*" in allow:
                problems.append(
                    f"media share //{host}/{share.get('share')} is open to every address (no hosts allow): anyone "
                    "who reaches smbd may try its password; set media_server_hosts_allow (role media_server)"
                )
            found.append(dict(share, host=host, hosts_allow=allow, problems=problems))
    return _problems_first(found)


def _direct_storages(hosts, reports):
    tree, owners = [], {}
    for host, report in reports.items():
        for item in report.get("direct_storages") or []:
            owners.setdefault(item["name"], []).append(host)
            problems = []
            if item.get("status") != ONLINE:
                detail = f": {item.get('message')}" if item.get("message") else ""
                problems.append(f"direct storage {item['name']} is {item.get('status')} on host {host}{detail}")
            tree.append(dict(item, host=host, problems=problems))
    for item in tree:
        if len(owners[item["name"]]) > 1:
            item["problems"].append(
                "direct storage {} is registered on several hosts ({}); it is one host's disk: fix host".format(
                    item["name"], ", ".join(owners[item["name"]])
                )
            )
    order = {host: number for number, host in enumerate(hosts)}
    tree.sort(key=lambda item: (order.get(item["host"], len(order)), item["name"]))
    return _problems_first(tree)


def _san_luns(hosts, reports):
    """Each LUN of a SAN target, with every host's paths (total, active) and a problem where a host has
    no map, or fewer active paths than when it was converged (redundancy lost)."""
    luns = {}
    for host, report in reports.items():
        for target in report.get("san_targets") or []:
            for lun in target.get("luns") or []:
                item = luns.setdefault(
                    (target["name"], lun["wwid"]),
                    {"name": lun["wwid"], "target": target["name"], "iqn": target.get("iqn"), "device": lun["device"],
                     "paths": {}, "problems": []},
                )  # fmt: skip
                item["paths"][host] = {
                    "total": lun["paths"],
                    "active": lun["active"],
                    "converged": lun["converged_paths"],
                }
                where = f"LUN {lun['wwid']} of SAN target {target['name']}"
                if not lun["map"]:
                    item["problems"].append(f"{where} has no multipath map on host {host}: converge the SAN (site.yml)")
                elif lun["converged_paths"] and lun["active"] < lun["converged_paths"]:
                    failed = ", ".join(
                        f"{n} {s}" for n, s in sorted(lun.get("path_states", {}).items()) if s != "running"
                    )
                    item["problems"].append(
                        f"{where} on host {host}: {lun['active']} of {lun['converged_paths']} paths active, redundancy "
                        f"lost{' (' + failed + ')' if failed else ''}: bring the portal or its network back"
                    )
    order = {host: number for number, host in enumerate(hosts)}
    tree = sorted(luns.values(), key=lambda item: (item["target"], item["name"]))
    for item in tree:
        item["paths"] = dict(sorted(item["paths"].items(), key=lambda kv: order.get(kv[0], len(order))))
    return _problems_first(tree)


# --- the terminal ----------------------------------------------------------------------------


def _mark(item):
    return "! " if troubled(item) else "  "


def _per_host(status):
    return ", ".join(f"{host} {state}" for host, state in status.items()) or "no hosts"


def _branches(items):
    return [("└─" if number == len(items) - 1 else "├─", item) for number, item in enumerate(items)]


def text(report):
    """The tree for a terminal: a headline, every problem, then the three kinds of storage."""
    summary = report["summary"]
    lines = [
        "Storage report of {} host(s) ({}): {} object(s), {} problem(s)".format(
            summary["hosts"], ", ".join(report["hosts"]), summary["objects"], summary["problems"]
        )
    ]
    if report["problems"]:
        lines.append("Problems:")
        lines += [f"  ! {problem}" for problem in report["problems"]]
    lines.append("Image storages:")
    for storage in report["image_storages"]:
        lines.append("{}{} (hosts: {})".format(_mark(storage), storage["name"], ", ".join(storage["hosts"])))
        for branch, v in _branches(storage["volumes"]):
            line = f"    {branch} {_mark(v)}{v['name']} [{v['type']}] {v['mount_point']}: {_per_host(v['status'])}"
            if v["size"] is not None:
                line += "; {} free of {} ({:g}%{}), fallocate {}, reflink {}, {} image(s)".format(
                    size(v["free"]),
                    size(v["size"]),
                    v["free_percent"],
                    f" on {v['lowest_on']}, the least" if v["lowest_on"] else "",
                    yes_no(v["fallocate"]),
                    yes_no(v["reflink"]),
                    len(v["images"]),
                )
            lines.append(line)
        if not storage["volumes"]:
            lines.append("    (no volumes)")
    if not report["image_storages"]:
        lines.append("  (none)")
    lines.append("Media storages:")
    for m in report["media_storages"]:
        lines.append(
            "{}{} (//{}/{}, hosts: {}): {}".format(
                _mark(m), m["name"], m["server"], m["share"], ", ".join(m["hosts"]), _per_host(m["status"])
            )
        )
        last = m["last_operation"]
        if last:
            lines.append(
                "    last operation: {} at {} ({})".format(last.get("message"), last.get("time"), last["host"])
            )
        for branch, f in _branches(m["files"]):
            lines.append("    {} {} [{}] {}".format(branch, f["name"], f.get("type", "?"), size(f.get("size"))))
        if not m["files"]:
            lines.append("    (no ISO or FVM files)")
    if not report["media_storages"]:
        lines.append("  (none)")
    if report.get("media_shares"):
        lines.append("Media shares served:")
        for share in report["media_shares"]:
            lines.append(
                "{}//{}/{} ({}): hosts allow {}".format(
                    _mark(share), share["host"], share["share"], share.get("path"), " ".join(share["hosts_allow"])
                )
            )
    lines.append("Direct storages:")
    for d in report["direct_storages"]:
        facts = ", ".join(
            x
            for x in (
                d.get("kernel_name") or "missing",
                size(d.get("size")),
                d.get("model"),
                d.get("serial") and f"serial {d['serial']}",
            )
            if x
        )
        lines.append(
            "{}{} on {}: {} ({}): {}, qemu access {}".format(
                _mark(d), d["name"], d["host"], d.get("device"), facts, d.get("status"), yes_no(d.get("qemu_access"))
            )
        )
    if not report["direct_storages"]:
        lines.append("  (none)")
    if report.get("san_luns"):
        lines.append("SAN LUNs (paths active/total per host):")
        for lun in report["san_luns"]:
            per_host = ", ".join(f"{h} {p['active']}/{p['total']}" for h, p in lun["paths"].items())
            lines.append(f"{_mark(lun)}{lun['name']} of {lun['target']} ({lun['device']}): {per_host}")
    return "\n".join(lines) + "\n"


# --- the web page ------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1.5rem;color:#1d2330;background:#f6f7f9}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:1.75rem 0 .5rem;border-bottom:1px solid #d5d9e0}
.sub{color:#5b6474;margin:0 0 1rem}
.card{background:#fff;border:1px solid #d5d9e0;border-radius:6px;padding:.75rem 1rem;margin:.5rem 0}
.card.bad{border-left:5px solid #c62828}
.problems{background:#fdecea;border:1px solid #f5c2c0;border-radius:6px;padding:.5rem 1rem}
.problems li{margin:.2rem 0}
.name{font-weight:600}.muted{color:#5b6474}
table{border-collapse:collapse;width:100%;margin-top:.5rem}
th,td{text-align:left;padding:.3rem .5rem;border-top:1px solid #eceef2;vertical-align:top}
th{font-weight:600;color:#5b6474;font-size:.85rem}
.badge{display:inline-block;white-space:nowrap;border-radius:3px;padding:0 .4rem;margin:0 .25rem .15rem 0;font-size:.8rem;color:#fff}
.badge.ok{background:#2e7d32}.badge.bad{background:#c62828}.badge.unknown{background:#757575}
.bar{position:relative;background:#e3e6eb;border-radius:3px;height:.9rem;width:12rem}
.bar>span{position:absolute;left:0;top:0;bottom:0;border-radius:3px;background:#1976d2}
.bar.low>span{background:#c62828}
.mark{color:#c62828;font-weight:700}
"""


def _e(value):
    return _html.escape("" if value is None else str(value))


def _badges(status):
    out = []
    for host, state in status.items():
        kind = "ok" if state == ONLINE else ("unknown" if state == UNKNOWN else "bad")
        out.append(f'<span class="badge {kind}" title="{_e(state)}">{_e(host)}: {_e(state)}</span>')
    return "".join(out) or '<span class="muted">no hosts</span>'


def _bar(volume, threshold):
    if volume["size"] is None:
        return '<span class="muted">?</span>'
    used = 100.0 - volume["free_percent"]
    low = " low" if volume["free_percent"] < threshold else ""
    return (
        f'<div class="bar{low}" title="{used:.1f}% used"><span style="width:{used:.1f}%"></span></div>'
        f"{_e(size(volume['free']))} free of {_e(size(volume['size']))} ({volume['free_percent']:g}%)"
        + (f" on {_e(volume['lowest_on'])}, the least" if volume["lowest_on"] else "")
    )


def _card(item, inner):
    bad = " bad" if troubled(item) else ""
    mark = '<span class="mark">! </span>' if troubled(item) else ""
    problems = "".join(f"<li>{_e(p)}</li>" for p in item["problems"])
    listed = f'<ul class="problems">{problems}</ul>' if problems else ""
    return f'<div class="card{bad}">{mark}{inner}{listed}</div>'


def html(report):
    """The report as one self-contained HTML page: inline CSS, no script, nothing fetched."""
    summary, threshold = report["summary"], report["threshold"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing may be fetched: only the inline style (and the empty data: icon) is allowed.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">',
        '<link rel="icon" href="data:,">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>flexVDI storage report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>flexVDI storage report</h1>",
        '<p class="sub">{} host(s): {} &middot; {} object(s) &middot; {} problem(s)</p>'.format(
            summary["hosts"], _e(", ".join(report["hosts"])), summary["objects"], summary["problems"]
        ),
    ]
    if report["problems"]:
        parts.append('<div class="problems"><strong>Problems</strong><ul>')
        parts += [f"<li>{_e(p)}</li>" for p in report["problems"]]
        parts.append("</ul></div>")
    if report["host_problems"]:
        parts.append(_card({"problems": report["host_problems"]}, '<span class="name">Hosts without a report</span>'))
    parts.append("<h2>Image storages</h2>")
    for storage in report["image_storages"]:
        rows = []
        for v in storage["volumes"]:
            mark = '<span class="mark">! </span>' if v["problems"] else ""
            problems = "".join(f"<li>{_e(p)}</li>" for p in v["problems"])
            rows.append(
                '<tr><td>{}<span class="name">{}</span> <span class="muted">[{}]</span><br>'
                '<span class="muted">{}</span>{}</td><td>{}</td><td>{}</td><td>fallocate {}<br>reflink {}</td>'
                "<td>{}</td></tr>".format(
                    mark,
                    _e(v["name"]),
                    _e(v["type"]),
                    _e(v["mount_point"]),
                    f'<ul class="problems">{problems}</ul>' if problems else "",
                    _badges(v["status"]),
                    _bar(v, threshold),
                    yes_no(v["fallocate"]),
                    yes_no(v["reflink"]),
                    len(v["images"]),
                )
            )
        table = (
            "<table><tr><th>Volume</th><th>Status per host</th><th>Space</th><th>Capabilities</th><th>Images</th></tr>"
            + "".join(rows)
            + "</table>"
            if rows
            else '<p class="muted">No volumes.</p>'
        )
        head = '<span class="name">{}</span> <span class="muted">hosts: {}</span>'.format(
            _e(storage["name"]), _e(", ".join(storage["hosts"]))
        )
        parts.append(_card(storage, head + table))
    if not report["image_storages"]:
        parts.append('<p class="muted">None.</p>')
    parts.append("<h2>Media storages</h2>")
    for m in report["media_storages"]:
        last = m["last_operation"]
        inner = '<span class="name">{}</span> <span class="muted">//{}/{}</span><br>{}'.format(
            _e(m["name"]), _e(m["server"]), _e(m["share"]), _badges(m["status"])
        )
        if last:
            inner += '<p class="muted">Last operation: {} at {} ({})</p>'.format(
                _e(last.get("message")), _e(last.get("time")), _e(last["host"])
            )
        files = "".join(
            f"<tr><td>{_e(f['name'])}</td><td>{_e(f.get('type'))}</td><td>{_e(size(f.get('size')))}</td></tr>"
            for f in m["files"]
        )
        inner += (
            f"<table><tr><th>File</th><th>Type</th><th>Size</th></tr>{files}</table>"
            if files
            else '<p class="muted">No ISO or FVM files.</p>'
        )
        parts.append(_card(m, inner))
    if not report["media_storages"]:
        parts.append('<p class="muted">None.</p>')
    parts.append("<h2>Direct storages</h2>")
    for d in report["direct_storages"]:
        state = {d["host"]: d.get("status") or UNKNOWN}
        inner = (
            '<span class="name">{}</span> <span class="muted">{}</span><br>{} {} &middot; {} &middot; model {} '
            "&middot; serial {} &middot; qemu access {}".format(
                _e(d["name"]),
                _e(d.get("device")),
                _badges(state),
                _e(d.get("kernel_name") or "missing"),
                _e(size(d.get("size"))),
                _e(d.get("model") or "?"),
                _e(d.get("serial") or "?"),
                yes_no(d.get("qemu_access")),
            )
        )
        parts.append(_card(d, inner))
    if not report["direct_storages"]:
        parts.append('<p class="muted">None.</p>')
    if report.get("san_luns"):
        parts.append("<h2>SAN LUNs</h2>")
        for lun in report["san_luns"]:
            per_host = " &middot; ".join(f"{_e(h)} {p['active']}/{p['total']} paths" for h, p in lun["paths"].items())
            inner = '<span class="name">{}</span> <span class="muted">{} {}</span><br>{}'.format(
                _e(lun["name"]), _e(lun["target"]), _e(lun["device"]), per_host
            )
            parts.append(_card(lun, inner))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
