package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"time"
)

// SVG draws two bar panels per row, on log scales because the figures
// span four decades: the rate (requests, items, rows or ops per second)
// and the p99 latency. Ceilings are grey, scenarios blue, missed targets red.
func (r *report) SVG() []byte {
	const (
		labelW = 360
		panelW = 300
		gap    = 40
		rowH   = 24
		top    = 56
		barH   = 16
	)
	width := labelW + 2*panelW + gap + 20
	height := top + rowH*len(r.Rows) + 40
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">rate per second (log scale)</text>`+"\n", labelW)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">p99 latency (log scale)</text>`+"\n", labelW+panelW+gap)

	rates := logAxis{}
	lats := logAxis{}
	for _, x := range r.Rows {
		rates.include(x.Rate)
		lats.include(float64(x.P99) / float64(time.Millisecond))
	}
	rates.draw(&b, labelW, panelW, top, height-40, "/s")
	lats.draw(&b, labelW+panelW+gap, panelW, top, height-40, " ms")

	for i, x := range r.Rows {
		y := top + i*rowH
		color := "#3b75af"
		switch {
		case x.Vs == "" && x.RatioOf == "":
			color = "#9a9a9a"
		case x.HasTarget && !x.Met:
			color = "#c0392b"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+barH-3, html.EscapeString(x.Name))
		if x.Rate > 0 {
			w := rates.scale(x.Rate, panelW)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelW, y, w, barH, color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11">%s</text>`+"\n", float64(labelW)+w+4, y+barH-3, html.EscapeString(thousands(x.Rate)+" "+x.Unit))
		}
		if p := float64(x.P99) / float64(time.Millisecond); p > 0 {
			w := lats.scale(p, panelW)
			x0 := labelW + panelW + gap
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.8"/>`+"\n", x0, y, w, barH, color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11">%.2f ms</text>`+"\n", float64(x0)+w+4, y+barH-3, p)
		}
	}
	fmt.Fprintf(&b, `<text x="10" y="%d" font-size="11" fill="#555">%s — %s</text>`+"\n", height-10, html.EscapeString(r.Machine), html.EscapeString(r.Date))
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// logAxis spans whole decades around the values it was given.
type logAxis struct{ lo, hi float64 }

func (a *logAxis) include(v float64) {
	if v <= 0 {
		return
	}
	lo, hi := math.Floor(math.Log10(v)), math.Ceil(math.Log10(v))
	if hi == lo {
		hi++
	}
	if a.lo == 0 && a.hi == 0 {
		a.lo, a.hi = lo, hi
		return
	}
	a.lo, a.hi = math.Min(a.lo, lo), math.Max(a.hi, hi)
}

// scale maps v to a bar length within width; leaves room for the label.
func (a *logAxis) scale(v, width float64) float64 {
	if a.hi == a.lo {
		return 0
	}
	usable := width - 70
	return math.Max(1, (math.Log10(v)-a.lo)/(a.hi-a.lo)*usable)
}

// draw writes the decade grid lines and their labels.
func (a *logAxis) draw(b *bytes.Buffer, x0, width, top, bottom int, unit string) {
	if a.hi == a.lo {
		return
	}
	for d := a.lo; d <= a.hi; d++ {
		x := float64(x0) + a.scale(math.Pow(10, d), float64(width))
		if d == a.lo {
			x = float64(x0)
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top-6, x, bottom)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="10" fill="#777" text-anchor="middle">%s%s</text>`+"\n", x, top-10, decade(d), unit)
	}
}

func decade(d float64) string {
	v := math.Pow(10, d)
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}
