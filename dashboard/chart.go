package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

// Chart geometry, in SVG user units (the chart scales to its container).
const (
	chartWidth  = 720.0
	chartHeight = 180.0
	chartLeft   = 44.0 // room for the y labels
	chartBottom = 20.0 // room for the x labels
	chartTop    = 18.0 // room for the title
	chartTicks  = 6
)

// barChart draws counts per time bucket as an inline SVG bar chart, on the
// server: no script and no style attribute. Every text is escaped; the
// numbers are formatted here.
func barChart(title string, points []chstore.TimeCount, bucket time.Duration) template.HTML {
	var maxN uint64
	for _, p := range points {
		maxN = max(maxN, p.Count)
	}
	top := niceCeil(maxN)
	plotW, plotH := chartWidth-chartLeft, chartHeight-chartBottom-chartTop
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`,
		chartWidth, chartHeight, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="12">%s</text>`, chartLeft, template.HTMLEscapeString(title))
	// Axis and y labels: zero and the top.
	base := chartTop + plotH
	fmt.Fprintf(&b, `<line class="axis" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"/>`, chartLeft, base, chartWidth, base)
	fmt.Fprintf(&b, `<line class="axis" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"/>`, chartLeft, chartTop, chartWidth, chartTop)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">0</text>`, chartLeft-4, base)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%d</text>`, chartLeft-4, chartTop+8, top)
	if n := len(points); n > 0 {
		w := plotW / float64(n)
		layout := "15:04"
		if bucket >= 24*time.Hour {
			layout = "01-02"
		}
		for i, p := range points {
			x := chartLeft + float64(i)*w
			if p.Count > 0 {
				h := plotH * float64(p.Count) / float64(top)
				fmt.Fprintf(&b, `<rect class="bar" x="%.2f" y="%.2f" width="%.2f" height="%.2f"><title>%s: %d</title></rect>`,
					x, base-h, max(w-0.5, 0.3), h, p.Time.UTC().Format("2006-01-02 15:04Z"), p.Count)
			}
			if step := max(n/chartTicks, 1); i%step == 0 {
				fmt.Fprintf(&b, `<text x="%.2f" y="%.0f">%s</text>`, x, chartHeight-6, p.Time.UTC().Format(layout))
			}
		}
	} else {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">no data</text>`, chartLeft+8, chartTop+plotH/2)
	}
	b.WriteString(`</svg>`)
	// Safe: the only strings spliced in are escaped above; the rest are
	// numbers and fixed time layouts.
	return template.HTML(b.String()) //nolint:gosec // see above
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten (at least 1), so
// the top of the y axis is a round number.
func niceCeil(n uint64) uint64 {
	if n <= 1 {
		return 1
	}
	for p := uint64(1); ; p *= 10 {
		for _, m := range []uint64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}
