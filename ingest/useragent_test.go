package ingest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReduceUserAgent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		want UserAgent
	}{
		{
			name: "desktop/chrome windows",
			raw:  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			want: UserAgent{Browser: "Chrome", OS: "Windows", Device: DeviceDesktop},
		},
		{
			name: "desktop/edge windows",
			raw:  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
			want: UserAgent{Browser: "Edge", OS: "Windows", Device: DeviceDesktop},
		},
		{
			name: "desktop/safari macos",
			raw:  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
			want: UserAgent{Browser: "Safari", OS: "macOS", Device: DeviceDesktop},
		},
		{
			name: "desktop/firefox linux",
			raw:  "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
			want: UserAgent{Browser: "Firefox", OS: "Linux", Device: DeviceDesktop},
		},
		{
			name: "desktop/firefox ubuntu",
			raw:  "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
			want: UserAgent{Browser: "Firefox", OS: "Linux", Device: DeviceDesktop},
		},
		{
			name: "desktop/opera windows",
			raw:  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
			want: UserAgent{Browser: "Opera", OS: "Windows", Device: DeviceDesktop},
		},
		{
			name: "desktop/chromebook",
			raw:  "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			want: UserAgent{Browser: "Chrome", OS: "ChromeOS", Device: DeviceDesktop},
		},
		{
			name: "desktop/internet explorer",
			raw:  "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)",
			want: UserAgent{Browser: "Internet Explorer", OS: "Windows", Device: DeviceDesktop},
		},
		{
			name: "mobile/safari iphone",
			raw:  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
			want: UserAgent{Browser: "Safari", OS: "iOS", Device: DeviceMobile},
		},
		{
			name: "mobile/chrome iphone",
			raw:  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
			want: UserAgent{Browser: "Chrome", OS: "iOS", Device: DeviceMobile},
		},
		{
			name: "mobile/chrome android",
			raw:  "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
			want: UserAgent{Browser: "Chrome", OS: "Android", Device: DeviceMobile},
		},
		{
			name: "mobile/firefox android",
			raw:  "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
			want: UserAgent{Browser: "Firefox", OS: "Android", Device: DeviceMobile},
		},
		{
			name: "mobile/samsung internet",
			raw:  "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
			want: UserAgent{Browser: "Samsung Internet", OS: "Android", Device: DeviceMobile},
		},
		{
			name: "mobile/android webview",
			raw:  "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.0.0 Mobile Safari/537.36",
			want: UserAgent{Browser: "Chrome", OS: "Android", Device: DeviceMobile},
		},
		{
			name: "tablet/ipad",
			raw:  "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
			want: UserAgent{Browser: "Safari", OS: "iOS", Device: DeviceTablet},
		},
		{
			name: "tablet/chrome android without mobile token",
			raw:  "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			want: UserAgent{Browser: "Chrome", OS: "Android", Device: DeviceTablet},
		},
		{
			name: "bot/googlebot",
			raw:  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			want: UserAgent{Browser: UnknownFamily, OS: UnknownFamily, Device: DeviceBot},
		},
		{
			name: "bot/bingbot",
			raw:  "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
			want: UserAgent{Browser: "Chrome", OS: UnknownFamily, Device: DeviceBot},
		},
		{
			name: "bot/headless chrome",
			raw:  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
			want: UserAgent{Browser: "Chrome", OS: "Windows", Device: DeviceBot},
		},
		{
			name: "bot/curl",
			raw:  "curl/8.5.0",
			want: UserAgent{Browser: UnknownFamily, OS: UnknownFamily, Device: DeviceBot},
		},
		{
			name: "bot/python requests",
			raw:  "python-requests/2.31.0",
			want: UserAgent{Browser: UnknownFamily, OS: UnknownFamily, Device: DeviceBot},
		},
		{
			name: "unknown/empty",
			raw:  "",
			want: UserAgent{Browser: UnknownFamily, OS: UnknownFamily, Device: DeviceUnknown},
		},
		{
			name: "unknown/blank",
			raw:  "   ",
			want: UserAgent{Browser: UnknownFamily, OS: UnknownFamily, Device: DeviceUnknown},
		},
		{
			name: "unknown/native app",
			raw:  "MyApp/1.0 (iPhone; iOS 17.6; Scale/3.00)",
			want: UserAgent{Browser: UnknownFamily, OS: UnknownFamily, Device: DeviceUnknown},
		},
		{
			name: "unknown/smart tv",
			raw:  "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
			want: UserAgent{Browser: "Samsung Internet", OS: "Linux", Device: DeviceUnknown},
		},
	}
	r := NewUserAgentReducer(8)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, ReduceUserAgent(tt.raw))
			// The same answer uncached, cached, and through a small cache
			// that evicts.
			require.Equal(t, tt.want, NewUserAgentReducer(0).Reduce(tt.raw))
			require.Equal(t, tt.want, ReduceUserAgent(tt.raw))
			require.Equal(t, tt.want, r.Reduce(tt.raw))
		})
	}
}

func TestReduceUserAgentKeepsNoVersions(t *testing.T) {
	t.Parallel()
	ua := ReduceUserAgent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.86 Safari/537.36")
	for _, s := range []string{ua.Browser, ua.OS, ua.Device} {
		require.NotRegexp(t, `[0-9]`, s)
	}
}

func TestUserAgentCacheIsBounded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		size int
		max  int
	}{
		{name: "size 1", size: 1, max: 2},
		{name: "size 10", size: 10, max: 10},
		{name: "size 101", size: 101, max: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewUserAgentReducer(tt.size)
			for i := range 1000 {
				r.Reduce(fmt.Sprintf("curl/%d.0", i))
				require.LessOrEqual(t, r.cache.Len(), tt.max)
			}
		})
	}
	t.Run("no cache", func(t *testing.T) {
		t.Parallel()
		r := NewUserAgentReducer(0)
		require.Nil(t, r.cache)
		require.Equal(t, DeviceBot, r.Reduce("curl/8.5.0").Device)
	})
	t.Run("long strings are not cached", func(t *testing.T) {
		t.Parallel()
		r := NewUserAgentReducer(10)
		r.Reduce("curl/8.5.0 " + strings.Repeat("x", maxCachedUserAgent))
		require.Zero(t, r.cache.Len())
	})
}

func TestReduceUserAgentConcurrent(t *testing.T) {
	t.Parallel()
	r := NewUserAgentReducer(16)
	uas := []string{
		"curl/8.5.0",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
	}
	want := make([]UserAgent, len(uas))
	for i, ua := range uas {
		want[i] = NewUserAgentReducer(0).Reduce(ua)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := (g + i) % len(uas)
				if got := r.Reduce(uas[k]); got != want[k] {
					t.Errorf("Reduce(%q) = %+v, want %+v", uas[k], got, want[k])
					return
				}
				r.Reduce(fmt.Sprintf("curl/%d.%d", g, i))
			}
		})
	}
	wg.Wait()
}

func BenchmarkReduceUserAgent(b *testing.B) {
	const raw = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	b.Run("cached", func(b *testing.B) {
		r := NewUserAgentReducer(DefaultUserAgentCacheSize)
		b.ReportAllocs()
		for b.Loop() {
			r.Reduce(raw)
		}
	})
	b.Run("cached parallel", func(b *testing.B) {
		r := NewUserAgentReducer(DefaultUserAgentCacheSize)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Reduce(raw)
			}
		})
	})
	b.Run("uncached", func(b *testing.B) {
		r := NewUserAgentReducer(0)
		b.ReportAllocs()
		for b.Loop() {
			r.Reduce(raw)
		}
	})
}
