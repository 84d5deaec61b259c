package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dialoq/dialoq/storage/central"
)

// Reports is the part of the central store coordinators read in chat: the Table 1
// counts, the Table 7 training needs and the exports.
type Reports interface {
	Responses(ctx context.Context, f central.Filter) (central.ResponseReport, error)
	TrainingNeeds(ctx context.Context, f central.Filter, matrix string) (central.NeedsReport, error)
	// Export writes flow's submissions as format (csv or xlsx), labelled in lang.
	Export(ctx context.Context, w io.Writer, flow, format, lang string, f central.Filter) error
}

// StoreReports reads reports from an embedded central store.
type StoreReports struct{ Store *central.Store }

// Responses is central.Store.Responses.
func (s StoreReports) Responses(ctx context.Context, f central.Filter) (central.ResponseReport, error) {
	return s.Store.Responses(ctx, f)
}

// TrainingNeeds is central.Store.TrainingNeeds.
func (s StoreReports) TrainingNeeds(ctx context.Context, f central.Filter, matrix string) (central.NeedsReport, error) {
	return s.Store.TrainingNeeds(ctx, f, matrix)
}

// Export runs the store's CSV or XLSX export.
func (s StoreReports) Export(ctx context.Context, w io.Writer, flow, format, lang string, f central.Filter) error {
	switch format {
	case "csv":
		return s.Store.ExportCSV(ctx, w, flow, lang, f)
	case "xlsx":
		return s.Store.ExportXLSX(ctx, w, flow, lang, f)
	}
	return fmt.Errorf("bot: unknown export format %q", format)
}

// HTTPReports reads reports from a `dialoq central` service (CENTRAL_URL), with the
// same bearer token the outbox posts with. central.Client has no report calls: it is
// the outbox's client and deliberately minimal.
type HTTPReports struct {
	base  string
	token string
	hc    *http.Client
}

// NewHTTPReports returns a report client for the service at baseURL; nil hc gets
// one with a timeout.
func NewHTTPReports(baseURL, token string, hc *http.Client) *HTTPReports {
	if hc == nil {
		hc = newHTTPClient(60 * time.Second)
	}
	return &HTTPReports{base: strings.TrimRight(baseURL, "/"), token: token, hc: hc}
}

func filterQuery(f central.Filter) url.Values {
	q := url.Values{}
	if f.Flow != "" {
		q.Set("flow", f.Flow)
	}
	if len(f.Countries) > 0 {
		q.Set("country", strings.Join(f.Countries, ","))
	}
	if len(f.Stakeholders) > 0 {
		q.Set("stakeholder", strings.Join(f.Stakeholders, ","))
	}
	if f.Code != "" {
		q.Set("code", f.Code)
	}
	if f.IncludePartial {
		q.Set("include_partial", "true")
	}
	return q
}

func (c *HTTPReports) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("bot: reports request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bot: reports %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var body struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body)
		return nil, fmt.Errorf("bot: reports %s: HTTP %d: %s", path, resp.StatusCode, body.Error)
	}
	return resp, nil
}

func (c *HTTPReports) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.get(ctx, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("bot: reports %s: %w", path, err)
	}
	return nil
}

// Responses is GET /v1/reports/responses.
func (c *HTTPReports) Responses(ctx context.Context, f central.Filter) (central.ResponseReport, error) {
	var r central.ResponseReport
	err := c.getJSON(ctx, "/v1/reports/responses", filterQuery(f), &r)
	return r, err
}

// TrainingNeeds is GET /v1/reports/training-needs.
func (c *HTTPReports) TrainingNeeds(ctx context.Context, f central.Filter, matrix string) (central.NeedsReport, error) {
	q := filterQuery(f)
	q.Set("matrix", matrix)
	var r central.NeedsReport
	err := c.getJSON(ctx, "/v1/reports/training-needs", q, &r)
	return r, err
}

// Export is GET /v1/exports/{flow}.{format}.
func (c *HTTPReports) Export(ctx context.Context, w io.Writer, flow, format, lang string, f central.Filter) error {
	if format != "csv" && format != "xlsx" {
		return errors.New("bot: export format must be csv or xlsx")
	}
	q := filterQuery(f)
	q.Set("lang", lang)
	resp, err := c.get(ctx, "/v1/exports/"+url.PathEscape(flow)+"."+format, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("bot: export download: %w", err)
	}
	return nil
}
