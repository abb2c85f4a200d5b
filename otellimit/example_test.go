package otellimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/otellimit"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// A limiter records to a MeterProvider; here the SDK's, read by a manual
// reader, where an app would use its OTLP or Prometheus exporter (or pass
// nil for the global provider).
func Example() {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	lim := core.New(otellimit.Observe(provider))
	defer lim.Close()
	quotes := core.MustNewMiddleware("2/minute", core.WithLimiter(lim), core.WithName("quotes"))
	mux := http.NewServeMux()
	mux.Handle("GET /quotes/{symbol}", quotes.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	for _, sym := range []string{"AAPL", "MSFT", "GOOG"} {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/quotes/"+sym, nil))
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	var lines []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "limitkit.decisions" {
			for _, p := range sum.DataPoints {
				route, _ := p.Attributes.Value(otellimit.AttrRoute)
				result, _ := p.Attributes.Value(otellimit.AttrResult)
				scope, _ := p.Attributes.Value(otellimit.AttrScope)
				lines = append(lines, fmt.Sprintf("%s %s scope=%s route=%q result=%s: %d",
					m.Name, m.Unit, scope.AsString(), route.AsString(), result.AsString(), p.Value))
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// limitkit.decisions {decision} scope=quotes route="GET /quotes/{symbol}" result=allowed: 2
	// limitkit.decisions {decision} scope=quotes route="GET /quotes/{symbol}" result=denied: 1
}
