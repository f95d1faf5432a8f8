package admintest

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/sluice-dev/sluice/pkg/admin"
)

// Client makes one connection per request, so that a test never talks to
// an old endpoint over a kept-alive connection, and leaves no goroutine.
func Client() *http.Client {
	return &http.Client{
		Timeout:   WaitBound,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
}

// Response is an HTTP answer read to the end.
type Response struct {
	Code   int
	Header http.Header
	Body   string
}

// Do sends one body-less request and reads the whole answer; a transport
// error fails the test.
func Do(t testing.TB, method, url string) Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return Response{Code: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// DecodeJSON decodes r's body as a T, failing the test if it is not one.
func DecodeJSON[T any](t testing.TB, r Response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatalf("decoding %q: %v", r.Body, err)
	}
	return v
}

// Status is GET base/status, which has to answer 200.
func Status(t testing.TB, base string) admin.Status {
	t.Helper()
	r := Do(t, "GET", base+"/status")
	if r.Code != http.StatusOK {
		t.Fatalf("GET /status: %d %s", r.Code, r.Body)
	}
	return DecodeJSON[admin.Status](t, r)
}

// PostReload is POST base/reload: its status code and decoded answer.
func PostReload(t testing.TB, base string) (int, admin.ReloadResponse) {
	t.Helper()
	r := Do(t, "POST", base+"/reload")
	return r.Code, DecodeJSON[admin.ReloadResponse](t, r)
}
