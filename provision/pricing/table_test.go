package pricing

import (
	"strings"
	"testing"
)

func TestOnDemandKnownRows(t *testing.T) {
	for _, tc := range []struct {
		name  string
		price float64
	}{
		{"m5.large", 0.096},
		{"t3.large", 0.0832},
		{"c7g.large", 0.0725},
		{"g4dn.xlarge", 0.526},
		{"p3.2xlarge", 3.06},
		{"z1d.xlarge", 0.372},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := OnDemand(tc.name)
			if !ok {
				t.Fatalf("no price for %s", tc.name)
			}
			if got != tc.price {
				t.Fatalf("price of %s = %v, want %v", tc.name, got, tc.price)
			}
		})
	}
}

func TestOnDemandUnknownType(t *testing.T) {
	for _, name := range []string{"", "m5.huge", "M5.LARGE", "instance_type"} {
		if p, ok := OnDemand(name); ok {
			t.Errorf("OnDemand(%q) = %v, true; want unknown", name, p)
		}
	}
}

func TestEmbeddedTableParses(t *testing.T) {
	table, err := OnDemandTable()
	if err != nil {
		t.Fatal(err)
	}
	if len(table) < 1000 {
		t.Fatalf("embedded table has %d rows, want > 1000", len(table))
	}
	// The returned map is a copy.
	table["m5.large"] = 42
	if p, _ := OnDemand("m5.large"); p == 42 {
		t.Fatal("OnDemandTable returned the shared table")
	}
}

func TestParseCSV(t *testing.T) {
	const header = "instance_type,usd_per_hour\n"
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string]float64
		wantErr string
	}{
		{name: "rows with comments and blanks", in: "# comment\n\n" + header + "a.large,0.5\n\n b.xl , 1.25 \n",
			want: map[string]float64{"a.large": 0.5, "b.xl": 1.25}},
		{name: "header only", in: header, want: map[string]float64{}},
		{name: "empty input", in: "", wantErr: "line 0: missing header"},
		{name: "wrong header", in: "type,price\na,1\n", wantErr: "line 1: expected header"},
		{name: "bad price", in: "# c\n" + header + "a.large,0.5\nb.large,abc\n", wantErr: "line 4: price of b.large"},
		{name: "too many fields", in: header + "a.large,0.5,x\n", wantErr: "line 2: expected 2 fields, got 3"},
		{name: "too few fields", in: header + "a.large\n", wantErr: "line 2: expected 2 fields, got 1"},
		{name: "empty type", in: header + ",0.5\n", wantErr: "line 2: empty instance type"},
		{name: "negative", in: header + "a.large,-1\n", wantErr: "line 2: price of a.large must be a finite non-negative"},
		{name: "NaN", in: header + "a.large,NaN\n", wantErr: "line 2: price of a.large must be a finite non-negative"},
		{name: "duplicate", in: header + "a.large,1\na.large,2\n", wantErr: "line 3: duplicate row for a.large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCSV(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got[%s] = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}
