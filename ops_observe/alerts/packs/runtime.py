"""The ``runtime`` pack: the process itself, from prometheus-client's process collector (``process_*``).

These metrics carry no namespace; with ``alerts.job`` unset they are kept to this service's
targets by joining on ``<ns>_build_info`` (see :meth:`AlertContext.ours`). In multiprocess mode
they have a ``pid`` label: each worker is watched on its own.
"""

from __future__ import annotations

from ops_observe.alerts.context import AlertContext, ratio
from ops_observe.alerts.rules import RuleGroup


def pack(ctx: AlertContext) -> list[RuleGroup]:
    """The runtime alerts: CPU, file descriptors, restarts, memory growth."""
    a = ctx.pack("runtime")
    sel = ctx.selector()
    fds = ratio(f"process_open_fds{sel}", f"process_max_fds{sel}")
    by = ctx.group_by("instance")
    # A restart of a single process changes its start time; a restarted worker (multiprocess
    # mode) is a new series, with a new pid: count the series seen in the hour that are gone.
    restarts = (
        f"sum by ({by}) (changes(process_start_time_seconds{sel}[1h])) + (count by ({by}) "
        f"(count_over_time(process_start_time_seconds{sel}[1h])) - count by ({by}) (process_start_time_seconds{sel}))"
    )
    return [
        a.group(
            a.alert(
                "HighProcessCPU", ctx.ours(f"rate(process_cpu_seconds_total{sel}[5m]) > $threshold"),
                threshold=0.9, shown="percent", for_="15m", severity="warning",
                summary="{{ $labels.instance }} uses more than $threshold of a CPU core.",
                description="The process of {{ $labels.instance }} ({{ $labels.job }}) uses "
                "{{ $value | humanizePercentage }} of a core over the last 5 minutes (threshold $threshold); "
                "one Python process does not use much more than one core: it is saturated.",
            ),
            a.alert(
                "FileDescriptorsNearLimit", ctx.ours(f"{fds} > $threshold"), threshold=0.8, shown="percent",
                for_="10m", severity="warning",
                summary="{{ $labels.instance }} uses more than $threshold of its file descriptors.",
                description="The process of {{ $labels.instance }} ({{ $labels.job }}) has "
                "{{ $value | humanizePercentage }} of its file descriptor limit open (threshold $threshold): "
                "leaking sockets or files.",
            ),
            a.alert(
                "FileDescriptorsExhausted", ctx.ours(f"{fds} > $threshold"), threshold=0.95, shown="percent",
                for_="5m", severity="critical",
                summary="{{ $labels.instance }} is about to run out of file descriptors.",
                description="The process of {{ $labels.instance }} ({{ $labels.job }}) has "
                "{{ $value | humanizePercentage }} of its file descriptor limit open (threshold $threshold): "
                "new connections will fail with 'too many open files'.",
            ),
            a.alert(
                "FrequentRestarts", ctx.ours(f"{restarts} > $threshold"), threshold=3, for_="0m",
                severity="warning",
                summary="{{ $labels.instance }} restarted more than $threshold times in an hour.",
                description="The processes of {{ $labels.instance }} ({{ $labels.job }}) restarted "
                "{{ $value | humanize }} times in the last hour (threshold $threshold): a crash loop, or "
                "workers killed for memory.",
            ),
            a.alert(
                "ProcessMemoryGrowing",
                ctx.ours(f"predict_linear(process_resident_memory_bytes{sel}[1h], 4 * 3600) > "
                         f"$threshold * process_resident_memory_bytes{sel}"),
                threshold=2, shown="factor", for_="30m", severity="warning",
                summary="The memory of {{ $labels.instance }} grows: $threshold its size within 4 hours.",
                description="At the last hour's pace the process of {{ $labels.instance }} "
                "({{ $labels.job }}) reaches {{ $value | humanize1024 }}B resident within 4 hours, "
                "more than $threshold its size now: a leak.",
            ),
        )
    ]  # fmt: skip
