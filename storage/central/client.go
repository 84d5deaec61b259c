package central

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client posts submissions to a `dialoq central` service. It is what the
// bot's outbox worker calls; it does not retry by itself, because the
// outbox owns retry timing and persistence. Use IsPermanent to decide
// between retrying and dead-lettering.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for the service at baseURL (e.g.
// "https://central.example.org"). A nil httpClient gets one with connect,
// TLS, header and overall timeouts, so a stalled server cannot hang the
// outbox worker.
func NewClient(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = 10 * time.Second
		tr.ResponseHeaderTimeout = 30 * time.Second
		tr.MaxIdleConnsPerHost = 4
		httpClient = &http.Client{Timeout: 60 * time.Second, Transport: tr}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: httpClient}
}

// HTTPError is a non-success answer of the service.
type HTTPError struct {
	Status     int           // HTTP status code
	Message    string        // the "error" of the JSON body, or the status text
	Field      string        // the offending field for 400s, if any
	RetryAfter time.Duration // from Retry-After on 429/503, 0 if absent
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("central: HTTP %d: %s", e.Status, e.Message)
	if e.Field != "" && !strings.HasPrefix(e.Message, e.Field+":") {
		msg += " (field " + e.Field + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrConflict) work for a 409 as it does for the
// direct store, and errors.Is(err, ErrInvalid) for a 400.
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrInvalid:
		return e.Status == http.StatusBadRequest
	}
	return false
}

// IsPermanent reports whether retrying err cannot succeed: a 4xx answer
// other than 408 (timeout) and 429 (rate limit), a conflict, or a
// submission that fails validation before it is sent. 5xx, 408, 429,
// network errors and timeouts are retryable.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status >= 400 && he.Status < 500 &&
			he.Status != http.StatusRequestTimeout && he.Status != http.StatusTooManyRequests
	}
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrConflict)
}

// Put posts s and reports whether the service stored it for the first time
// (201) rather than recognising a duplicate (200). It makes *Client a Sink.
func (c *Client) Put(ctx context.Context, s Submission) (created bool, err error) {
	// Catching structural errors locally saves a round trip and gives the
	// same *ValidationError as the direct store.
	if err := s.Validate(); err != nil {
		return false, err
	}
	body, err := json.Marshal(s)
	if err != nil {
		return false, fmt.Errorf("central: encode submission: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/submissions", bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("central: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("central: post submission %s: %w", s.ID, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // lets the connection be reused
		return true, nil
	case http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return false, nil
	}
	return false, fmt.Errorf("central: post submission %s: %w", s.ID, httpError(resp))
}

// httpError reads the service's JSON error body and Retry-After header.
func httpError(resp *http.Response) *HTTPError {
	he := &HTTPError{Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	var eb errorBody
	if b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)); json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		he.Message, he.Field = eb.Error, eb.Field
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		he.RetryAfter = time.Duration(secs) * time.Second
	}
	return he
}

// Withdraw asks the service to delete a submission at its respondent's request.
func (c *Client) Withdraw(ctx context.Context, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.base+"/v1/submissions/"+url.PathEscape(id), nil)
	if err != nil {
		return fmt.Errorf("central: build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("central: withdraw %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return fmt.Errorf("central: withdraw %s: %w", id, httpError(resp))
}

// Post posts s; a duplicate is a success. It makes *Client a Poster.
func (c *Client) Post(ctx context.Context, s Submission) error {
	_, err := c.Put(ctx, s)
	return err
}

// Compile-time checks that the direct store and the HTTP client are
// interchangeable for callers.
var (
	_ Sink   = (*Store)(nil)
	_ Sink   = (*Client)(nil)
	_ Poster = (*Store)(nil)
	_ Poster = (*Client)(nil)
)
