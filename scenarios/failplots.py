"""Plots shared by the failure scenarios: outage per trial, CDF, outage
against a parameter. Each takes {series label: [values]} (pure data) and a
path; matplotlib runs headless."""


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _finish(plt, fig, ax, path, title, xlabel, ylabel):
    """Labels, grid, legend, saved and closed: the end of every plot."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def per_trial(series, path, title, ylabel='outage, ms (longest probe gap '
              'at 1,000/s)'):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4))
    for label, ys in sorted(series.items()):
        if ys:
            ax.plot(range(1, len(ys) + 1), ys, marker='o', ms=4, label=label)
    _finish(plt, fig, ax, path, title, 'trial', ylabel)


def cdf(series, path, title, xlabel='outage, ms'):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, ys in sorted(series.items()):
        ys = sorted(ys)
        if ys:
            ax.step(ys, [(i + 1) / len(ys) for i in range(len(ys))],
                    where='post', label=label)
    _finish(plt, fig, ax, path, title, xlabel, 'fraction of trials')


def against(series, path, title, xlabel):
    """series: {label: {x: [values]}}: every trial as a dot, p50 as a line,
    log-log (CFM intervals span 10..1000 ms)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, by_x in sorted(series.items()):
        xs = sorted(by_x)
        line = ax.plot(xs, [sorted(by_x[x])[len(by_x[x]) // 2] for x in xs],
                       marker='o', label=f'{label} (p50)')[0]
        for x in xs:
            ax.scatter([x] * len(by_x[x]), by_x[x], s=10, alpha=0.4,
                       color=line.get_color())
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel(xlabel)
    ax.set_ylabel('outage, ms')
    ax.set_title(title)
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def side_by_side(panels, path, title):
    """panels: {panel title: {label: [values]}}: one panel per fabric, every
    trial a dot, the median a bar, shared y axis (log)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5),
                             sharey=True, squeeze=False)
    for ax, (name, series) in zip(axes[0], sorted(panels.items(),
                                                  reverse=True)):
        labels = sorted(series)
        for i, label in enumerate(labels):
            ys = [max(v, 0.5) for v in series[label]]
            ax.scatter([i] * len(ys), ys, s=14, alpha=0.6)
            ax.hlines(sorted(ys)[len(ys) // 2], i - 0.3, i + 0.3, color='k')
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(name.upper() if len(name) <= 4 else name)
        ax.set_yscale('log')
        ax.grid(alpha=0.3, which='both')
    axes[0][0].set_ylabel('outage, ms (log)')
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
