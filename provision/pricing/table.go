// Package pricing answers "what does an hour of this instance type cost":
// on-demand prices from an offline table embedded in the binary, spot prices
// from DescribeSpotPriceHistory, cached between refreshes. A price that is not
// known is reported as unknown; the one estimate is spot's while EC2 has never
// answered for it (the on-demand price less DefaultSpotDiscount), so spot
// stays usable and ranked below on-demand.
package pricing

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

// csvHeader is the header line every price table must start with.
const csvHeader = "instance_type,usd_per_hour"

//go:embed ec2-on-demand-prices-us-east-1.csv
var embeddedOnDemandCSV string

// EmbeddedRegion is the region the embedded on-demand table was published for.
const EmbeddedRegion = "us-east-1"

var embeddedTable = sync.OnceValues(func() (map[string]float64, error) {
	return ParseCSV(strings.NewReader(embeddedOnDemandCSV))
})

// OnDemand returns the embedded on-demand Linux price of an instance type in
// USD per hour, and false when the table has no row for it.
func OnDemand(instanceType string) (float64, bool) {
	table, err := embeddedTable()
	if err != nil {
		return 0, false
	}
	p, ok := table[instanceType]
	return p, ok
}

// OnDemandTable returns a copy of the embedded on-demand table, or the error
// that parsing it gave (a build defect that the package tests catch).
func OnDemandTable() (map[string]float64, error) {
	table, err := embeddedTable()
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(table))
	for k, v := range table {
		out[k] = v
	}
	return out, nil
}

// ParseCSV reads a price table: optional '#' comment lines and blank lines,
// the header "instance_type,usd_per_hour", then one "type,price" row per
// line. Errors carry the 1-based line number of the offending line.
func ParseCSV(r io.Reader) (map[string]float64, error) {
	prices := map[string]float64{}
	sc := bufio.NewScanner(r)
	line, header := 0, false
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if !header {
			if text != csvHeader {
				return nil, fmt.Errorf("line %d: expected header %q, got %q", line, csvHeader, text)
			}
			header = true
			continue
		}
		fields := strings.Split(text, ",")
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: expected 2 fields, got %d", line, len(fields))
		}
		name := strings.TrimSpace(fields[0])
		if name == "" {
			return nil, fmt.Errorf("line %d: empty instance type", line)
		}
		price, err := strconv.ParseFloat(strings.TrimSpace(fields[1]), 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: price of %s: %w", line, name, err)
		}
		if price < 0 || math.IsNaN(price) || math.IsInf(price, 0) {
			return nil, fmt.Errorf("line %d: price of %s must be a finite non-negative number, got %v", line, name, price)
		}
		if _, dup := prices[name]; dup {
			return nil, fmt.Errorf("line %d: duplicate row for %s", line, name)
		}
		prices[name] = price
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if !header {
		return nil, fmt.Errorf("line %d: missing header %q", line, csvHeader)
	}
	return prices, nil
}
