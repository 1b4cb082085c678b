package ingest

import (
	"strings"
	"sync"

	"github.com/sessionmon/sessionmon/internal/cache"

	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// UserAgent is a User-Agent header reduced to what sessionmon keeps:
// families and a device class, never versions or device models, so that it
// says little about the person on its own.
type UserAgent struct {
	// Browser is the browser family: "Chrome", "Firefox", "Safari", "Edge",
	// "Opera", "Samsung Internet", ..., or UnknownFamily.
	Browser string
	// OS is the operating system family: "Windows", "macOS", "iOS",
	// "Android", "Linux", "ChromeOS", ..., or UnknownFamily.
	OS string
	// Device is one of DeviceDesktop, DeviceMobile, DeviceTablet, DeviceBot
	// and DeviceUnknown.
	Device string
}

// Device classes, and the family of a browser or OS that is not recognised.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
	DeviceUnknown = "unknown"
	UnknownFamily = "unknown"
)

// DefaultUserAgentCacheSize is the cache size of ReduceUserAgent. Apps send
// few distinct User-Agent strings, so a small cache takes nearly every hit.
const DefaultUserAgentCacheSize = 4096

// maxCachedUserAgent is the longest string kept in the cache: the schema's
// limit for client.user_agent is 512 characters, and longer strings (which
// Validate rejects anyway) must not grow the cache's memory.
const maxCachedUserAgent = 512

// unknownUserAgent is the reduction of an empty or unrecognised string.
var unknownUserAgent = UserAgent{Browser: UnknownFamily, OS: UnknownFamily, Device: DeviceUnknown}

// UserAgentReducer reduces User-Agent strings with
// github.com/medama-io/go-useragent and caches the results in a bounded
// cache. It is safe for concurrent use.
type UserAgentReducer struct {
	parser *useragent.Parser
	cache  *cache.Cache[string, UserAgent]
}

// NewUserAgentReducer returns a reducer that caches up to cacheSize
// distinct strings (0 or less: no cache). Building the parser takes a few
// milliseconds the first time in a process; later calls share it.
func NewUserAgentReducer(cacheSize int) *UserAgentReducer {
	return &UserAgentReducer{parser: useragent.NewParser(), cache: cache.New[string, UserAgent](cacheSize)}
}

var defaultUserAgentReducer = sync.OnceValue(func() *UserAgentReducer {
	return NewUserAgentReducer(DefaultUserAgentCacheSize)
})

// ReduceUserAgent reduces raw with a process-wide reducer whose cache holds
// DefaultUserAgentCacheSize strings. It is safe for concurrent use.
func ReduceUserAgent(raw string) UserAgent {
	return defaultUserAgentReducer().Reduce(raw)
}

// Reduce returns the browser family, OS family and device class of raw.
func (r *UserAgentReducer) Reduce(raw string) UserAgent {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return unknownUserAgent
	}
	if len(raw) > maxCachedUserAgent {
		return r.parse(raw)
	}
	if ua, ok := r.cache.Get(raw); ok {
		return ua
	}
	ua := r.parse(raw)
	// The key is cloned so that the cache does not pin the buffer of the
	// message that raw was decoded from.
	r.cache.Put(strings.Clone(raw), ua)
	return ua
}

func (r *UserAgentReducer) parse(raw string) UserAgent {
	a := r.parser.Parse(raw)
	ua := UserAgent{
		Browser: browserFamily(a.Browser()),
		OS:      osFamily(a.OS()),
		Device:  deviceClass(a.Device()),
	}
	// Chrome-based browsers on Android tablets leave out the "Mobile" token
	// that phones send; the parser calls both mobile.
	if ua.OS == "Android" && ua.Device == DeviceMobile &&
		strings.Contains(raw, "Safari/") && !strings.Contains(raw, "Mobile") {
		ua.Device = DeviceTablet
	}
	return ua
}

// browserFamily names the parser's browsers as sessionmon stores them; the
// explicit list keeps stored values stable across parser upgrades.
func browserFamily(b agents.Browser) string {
	switch b {
	case "":
		return UnknownFamily
	case agents.BrowserChrome:
		return "Chrome"
	case agents.BrowserEdge:
		return "Edge"
	case agents.BrowserFirefox:
		return "Firefox"
	case agents.BrowserSafari:
		return "Safari"
	case agents.BrowserOpera:
		return "Opera"
	case agents.BrowserOperaMini:
		return "Opera Mini"
	case agents.BrowserIE:
		return "Internet Explorer"
	case agents.BrowserSamsung:
		return "Samsung Internet"
	case agents.BrowserAndroid:
		return "Android Browser"
	case agents.BrowserVivaldi:
		return "Vivaldi"
	case agents.BrowserSilk:
		return "Silk"
	case agents.BrowserYandex:
		return "Yandex"
	case agents.BrowserHuawei:
		return "Huawei Browser"
	case agents.BrowserFalkon:
		return "Falkon"
	case agents.BrowserNintendo:
		return "Nintendo Browser"
	default:
		return string(b)
	}
}

func osFamily(o agents.OS) string {
	switch o {
	case "":
		return UnknownFamily
	case agents.OSMacOS:
		return "macOS"
	case agents.OSWindows:
		return "Windows"
	case agents.OSIOS:
		return "iOS"
	case agents.OSAndroid:
		return "Android"
	case agents.OSLinux:
		return "Linux"
	case agents.OSChromeOS:
		return "ChromeOS"
	case agents.OSFreeBSD:
		return "FreeBSD"
	case agents.OSOpenBSD:
		return "OpenBSD"
	default:
		return string(o)
	}
}

// deviceClass maps the parser's device types to sessionmon's classes. TVs
// and consoles have no class of their own and count as unknown.
func deviceClass(d agents.Device) string {
	switch d {
	case agents.DeviceDesktop:
		return DeviceDesktop
	case agents.DeviceMobile:
		return DeviceMobile
	case agents.DeviceTablet:
		return DeviceTablet
	case agents.DeviceBot:
		return DeviceBot
	default:
		return DeviceUnknown
	}
}
