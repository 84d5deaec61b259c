package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiResult is a decoded Bot API answer plus the HTTP status.
type apiResult struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  *struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
	Status int `json:"-"`
}

func (r apiResult) decode(t *testing.T, v any) {
	t.Helper()
	if !r.OK {
		t.Fatalf("call failed: %d %s", r.ErrorCode, r.Description)
	}
	if err := json.Unmarshal(r.Result, v); err != nil {
		t.Fatalf("decode result %s: %v", r.Result, err)
	}
}

func doRequest(t *testing.T, req *http.Request) apiResult {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r apiResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("answer is not JSON: %q", body)
	}
	r.Status = resp.StatusCode
	return r
}

// callJSON posts an application/json body, the way many non-Go clients do.
func callJSON(t *testing.T, s *Server, method string, body any) apiResult {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.MethodURL(method), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return doRequest(t, req)
}

// callForm posts a urlencoded form, as tgbotapi does for non-file methods.
func callForm(t *testing.T, s *Server, method string, vals url.Values) apiResult {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.MethodURL(method), strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doRequest(t, req)
}

func callQuery(t *testing.T, s *Server, method string, vals url.Values) apiResult {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.MethodURL(method)+"?"+vals.Encode(), nil)
	return doRequest(t, req)
}

func callMultipart(t *testing.T, s *Server, method string, fields map[string]string, fileField, fileName string, data []byte) apiResult {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	if fileField != "" {
		part, _ := w.CreateFormFile(fileField, fileName)
		part.Write(data)
	}
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, s.MethodURL(method), &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return doRequest(t, req)
}

// send is sendMessage through JSON with optional extra fields.
func send(t *testing.T, s *Server, chatID int64, text string, extra map[string]any) apiResult {
	t.Helper()
	body := map[string]any{"chat_id": chatID, "text": text}
	for k, v := range extra {
		body[k] = v
	}
	return callJSON(t, s, "sendMessage", body)
}

func wantError(t *testing.T, r apiResult, code int, desc string) {
	t.Helper()
	if r.OK || r.ErrorCode != code || r.Status != code || !strings.HasPrefix(r.Description, desc) {
		t.Fatalf("got ok=%v status=%d code=%d %q; want %d %q", r.OK, r.Status, r.ErrorCode, r.Description, code, desc)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fakeClock makes rate-limit tests independent of the wall clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var alice = User{ID: 1001, FirstName: "Alice", LanguageCode: "en"}
var boris = User{ID: 1002, FirstName: "Boris", LastName: "K", Username: "boris", LanguageCode: "ru"}

type wireMessage struct {
	MessageID int `json:"message_id"`
	From      struct {
		ID       int64  `json:"id"`
		IsBot    bool   `json:"is_bot"`
		Username string `json:"username"`
	} `json:"from"`
	Chat struct {
		ID   int64  `json:"id"`
		Type string `json:"type"`
	} `json:"chat"`
	Date        int64           `json:"date"`
	EditDate    int64           `json:"edit_date"`
	Text        string          `json:"text"`
	Entities    []apiEntity     `json:"entities"`
	ReplyMarkup json.RawMessage `json:"reply_markup"`
	Document    *apiDocument    `json:"document"`
	Photo       []apiPhotoSize  `json:"photo"`
	Caption     string          `json:"caption"`
	ReplyTo     *struct {
		MessageID int `json:"message_id"`
	} `json:"reply_to_message"`
}

type wireUpdate struct {
	UpdateID int          `json:"update_id"`
	Message  *wireMessage `json:"message"`
	Callback *struct {
		ID      string       `json:"id"`
		Data    string       `json:"data"`
		Message *wireMessage `json:"message"`
		From    struct {
			ID int64 `json:"id"`
		} `json:"from"`
	} `json:"callback_query"`
}

func keyboard(rows ...[]map[string]any) map[string]any {
	return map[string]any{"inline_keyboard": rows}
}

func cb(text, data string) map[string]any { return map[string]any{"text": text, "callback_data": data} }

// testCtxShort is for waits that are expected to time out.
func testCtxShort() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 50*time.Millisecond)
}
