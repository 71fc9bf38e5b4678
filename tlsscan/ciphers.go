package tlsscan

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Cipher is one cipher suite: a row of the table (Lookup) or a suite the
// server accepted (Result.Ciphers). The classification is computed from
// the IANA name.
type Cipher struct {
	ID             uint16 `json:"id"`
	Name           string `json:"name"`    // IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	Version        string `json:"version"` // one of Versions
	Kex            string `json:"kex"`     // "ECDHE", "DHE", "RSA", "ECDH", "DH", "PSK", "TLS1.3" (any), "anon" …
	Bits           int    `json:"bits"`    // symmetric key bits (0 for NULL)
	ForwardSecrecy bool   `json:"forward_secrecy"`
	AEAD           bool   `json:"aead"`
	Anonymous      bool   `json:"anonymous"`
	// Obsolete: RC4, 3DES/DES, IDEA, NULL, EXPORT, anonymous, CBC with SHA-1 MAC, MD5 MAC.
	Obsolete bool `json:"obsolete"`
}

// suites is the parsed suiteTable, sorted by the scanner's offering
// order (see strength); byID indexes it.
var suites, byID = parseTable(suiteTable)

func parseTable(t string) ([]Cipher, map[uint16]Cipher) {
	var list []Cipher
	m := make(map[uint16]Cipher)
	for line := range strings.Lines(t) {
		id, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(id, 16, 16)
		if err != nil {
			panic("tlsscan: bad table row " + line) // the table is a constant
		}
		c := classify(uint16(n), name)
		list = append(list, c)
		m[c.ID] = c
	}
	slices.SortStableFunc(list, func(a, b Cipher) int { return cmp.Compare(strength(b), strength(a)) })
	return list, m
}

// Lookup returns the table row of a suite (for every IANA-registered TLS
// suite id we know). Row.Version is the oldest protocol version the suite
// can be used with.
func Lookup(id uint16) (Cipher, bool) {
	c, ok := byID[id]
	return c, ok
}

// classify fills the fields of a suite from its IANA name
// (TLS_<kex>_WITH_<cipher>_<mac>, or TLS_<aead>_<hash> for TLS 1.3).
func classify(id uint16, name string) Cipher {
	c := Cipher{ID: id, Name: name}
	kex, enc, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(name, "TLS_"), "SSL_"), "_WITH_")
	if !ok { // TLS 1.3: TLS_AES_128_GCM_SHA256
		kex, enc = "TLS1.3", strings.TrimPrefix(name, "TLS_")
	}
	export := strings.Contains(kex, "EXPORT")
	switch {
	case kex == "TLS1.3":
		c.Kex = "TLS1.3"
	case strings.HasPrefix(kex, "ECDHE_PSK"):
		c.Kex = "ECDHE_PSK"
	case strings.HasPrefix(kex, "DHE_PSK"), strings.HasPrefix(kex, "PSK_DHE"):
		c.Kex = "DHE_PSK"
	case strings.HasPrefix(kex, "RSA_PSK"):
		c.Kex = "RSA_PSK"
	case strings.HasPrefix(kex, "PSK"):
		c.Kex = "PSK"
	case strings.HasPrefix(kex, "ECDHE"):
		c.Kex = "ECDHE"
	case strings.HasPrefix(kex, "DHE"):
		c.Kex = "DHE"
	case strings.HasSuffix(kex, "_anon") || strings.HasPrefix(kex, "DH_anon") || strings.HasPrefix(kex, "ECDH_anon"):
		c.Kex = "anon"
		c.Anonymous = true
	case strings.HasPrefix(kex, "ECDH_"):
		c.Kex = "ECDH"
	case strings.HasPrefix(kex, "DH_"):
		c.Kex = "DH"
	case strings.HasPrefix(kex, "RSA"):
		c.Kex = "RSA"
	case strings.HasPrefix(kex, "KRB5"):
		c.Kex = "KRB5"
	case strings.HasPrefix(kex, "SRP"):
		c.Kex = "SRP"
	case strings.HasPrefix(kex, "ECCPWD"):
		c.Kex = "ECCPWD"
	case strings.HasPrefix(kex, "GOST"):
		c.Kex = "GOST"
	default:
		c.Kex = kex
	}
	c.ForwardSecrecy = !c.Anonymous && (c.Kex == "TLS1.3" || strings.HasPrefix(c.Kex, "ECDHE") || strings.HasPrefix(c.Kex, "DHE") || c.Kex == "GOST" && strings.HasPrefix(kex, "GOSTR341112"))
	c.AEAD = c.Kex == "TLS1.3" || strings.Contains(enc, "_GCM") || strings.Contains(enc, "_CCM") ||
		strings.Contains(enc, "POLY1305") || strings.Contains(enc, "_OMAC")
	switch {
	case strings.HasPrefix(enc, "NULL"):
		c.Bits = 0
	case strings.Contains(enc, "_40") || strings.Contains(enc, "DES40"):
		c.Bits = 40
	case strings.Contains(enc, "_56"):
		c.Bits = 56
	case strings.HasPrefix(enc, "DES_"):
		c.Bits = 56
	case strings.HasPrefix(enc, "3DES"):
		c.Bits = 168
	case strings.Contains(enc, "_256") || strings.HasPrefix(enc, "CHACHA20") || strings.Contains(enc, "28147") ||
		strings.Contains(enc, "KUZNYECHIK") || strings.Contains(enc, "MAGMA"):
		c.Bits = 256
	case strings.Contains(enc, "_128") || strings.HasPrefix(enc, "SEED") || strings.HasPrefix(enc, "IDEA"):
		c.Bits = 128
	}
	if export && c.Bits > 56 {
		c.Bits = 40
	}
	mac := enc[strings.LastIndexByte(enc, '_')+1:]
	c.Obsolete = c.Anonymous || export || c.Bits == 0 ||
		strings.Contains(enc, "RC4") || strings.Contains(enc, "DES") || strings.Contains(enc, "IDEA") ||
		strings.Contains(enc, "RC2") || mac == "MD5" || !c.AEAD && mac == "SHA" || strings.HasSuffix(name, "_OLD") ||
		strings.Contains(enc, "28147")
	switch {
	case c.Kex == "TLS1.3":
		c.Version = TLS13
	case c.AEAD || (mac == "SHA256" || mac == "SHA384") && !(strings.Contains(c.Kex, "PSK") && strings.Contains(enc, "_CBC_")):
		c.Version = TLS12
	case strings.HasPrefix(c.Kex, "GOST"):
		c.Version = TLS10
	case strings.Contains(c.Kex, "PSK") || c.Kex == "SRP":
		c.Version = TLS10
	default:
		c.Version = SSLv3
	}
	return c
}

// strength orders the suites the scanner offers: what servers pick
// (AES, ChaCha20, 3DES and RC4 with ECDHE, DHE or RSA) first, so that the
// first chunk of a hello holds the common suites; then the rarer ciphers
// and static DH; last the suites that need a configuration no scan has
// (PSK, SRP, Kerberos, GOST, ECCPWD) and anonymous ones. Within a class:
// not obsolete, forward secret, AEAD, longer keys first.
func strength(c Cipher) int {
	class := 1
	switch {
	case c.Anonymous, strings.Contains(c.Kex, "PSK"), c.Kex == "SRP", c.Kex == "KRB5", c.Kex == "GOST", c.Kex == "ECCPWD":
		class = 0
	case (c.Kex == "ECDHE" || c.Kex == "DHE" || c.Kex == "RSA" || c.Kex == "TLS1.3") && !strings.Contains(c.Name, "EXPORT") &&
		(strings.Contains(c.Name, "_AES_") || strings.Contains(c.Name, "CHACHA20") || strings.Contains(c.Name, "3DES") || strings.Contains(c.Name, "RC4_128")):
		class = 2
	}
	s := class*10000 + c.Bits/8
	if !c.Obsolete {
		s += 1000
	}
	if c.ForwardSecrecy {
		s += 400
	}
	if c.AEAD {
		s += 200
	}
	return s
}

var versionRank = map[string]int{SSLv2: 0, SSLv3: 1, TLS10: 2, TLS11: 3, TLS12: 4, TLS13: 5}

// suitesFor returns the ids a ClientHello for version v offers, in
// offering order: every suite usable with v (TLS 1.3 ones only for 1.3).
func suitesFor(v string) []uint16 {
	var ids []uint16
	for _, c := range suites {
		if v == TLS13 {
			if c.Version == TLS13 {
				ids = append(ids, c.ID)
			}
			continue
		}
		if c.Version != TLS13 && versionRank[c.Version] <= versionRank[v] {
			ids = append(ids, c.ID)
		}
	}
	if v == TLS13 { // the standard order, not the strength order
		slices.Sort(ids)
	}
	return ids
}

// sslv2Spec is an SSLv2 CIPHER-SPEC (RFC-less; draft-hickman-netscape-ssl-00).
type sslv2Spec struct {
	id   uint32
	name string
	bits int
}

// sslv2Specs are the seven SSLv2 cipher kinds. They are reported in
// Result.Ciphers with ID = the upper two bytes of the 3-byte spec
// (0x0100…0x0700, unassigned in the TLS registry); Lookup does not know
// them.
var sslv2Specs = []sslv2Spec{
	{0x0700c0, "SSL_CK_DES_192_EDE3_CBC_WITH_MD5", 168},
	{0x050080, "SSL_CK_IDEA_128_CBC_WITH_MD5", 128},
	{0x030080, "SSL_CK_RC2_128_CBC_WITH_MD5", 128},
	{0x010080, "SSL_CK_RC4_128_WITH_MD5", 128},
	{0x060040, "SSL_CK_DES_64_CBC_WITH_MD5", 56},
	{0x040080, "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5", 40},
	{0x020080, "SSL_CK_RC4_128_EXPORT40_WITH_MD5", 40},
}

func sslv2Cipher(s sslv2Spec) Cipher {
	return Cipher{ID: uint16(s.id >> 8), Name: s.name, Version: SSLv2, Kex: "RSA", Bits: s.bits, Obsolete: true}
}

// group is a named group (RFC 8422 §5.1.1, RFC 7919, RFC 8446 §4.2.7).
type group struct {
	id   uint16
	name string
	tls2 bool // usable in TLS ≤1.2 ECDHE
	tls3 bool // usable in TLS 1.3
}

var groups = []group{
	{0x11ec, "X25519MLKEM768", false, true},
	{0x11eb, "SecP256r1MLKEM768", false, true},
	{0x11ed, "SecP384r1MLKEM1024", false, true},
	{29, "X25519", true, true},
	{23, "P-256", true, true},
	{24, "P-384", true, true},
	{25, "P-521", true, true},
	{30, "X448", true, true},
	{26, "brainpoolP256r1", true, false},
	{27, "brainpoolP384r1", true, false},
	{28, "brainpoolP512r1", true, false},
	{31, "brainpoolP256r1tls13", false, true},
	{32, "brainpoolP384r1tls13", false, true},
	{33, "brainpoolP512r1tls13", false, true},
	{22, "secp256k1", true, false},
	{21, "secp224r1", true, false},
	{20, "secp224k1", true, false},
	{19, "secp192r1", true, false},
	{18, "secp192k1", true, false},
	{17, "secp160r2", true, false},
	{16, "secp160r1", true, false},
	{15, "secp160k1", true, false},
	{14, "sect571r1", true, false},
	{13, "sect571k1", true, false},
	{12, "sect409r1", true, false},
	{11, "sect409k1", true, false},
	{10, "sect283r1", true, false},
	{9, "sect283k1", true, false},
	{8, "sect239k1", true, false},
	{7, "sect233r1", true, false},
	{6, "sect233k1", true, false},
	{5, "sect193r2", true, false},
	{4, "sect193r1", true, false},
	{3, "sect163r2", true, false},
	{2, "sect163r1", true, false},
	{1, "sect163k1", true, false},
	{256, "ffdhe2048", false, true},
	{257, "ffdhe3072", false, true},
	{258, "ffdhe4096", false, true},
	{259, "ffdhe6144", false, true},
	{260, "ffdhe8192", false, true},
}

func groupName(id uint16) string {
	for _, g := range groups {
		if g.id == id {
			return g.name
		}
	}
	return "0x" + strconv.FormatUint(uint64(id), 16)
}

func groupIDs(tls13 bool) []uint16 {
	var ids []uint16
	for _, g := range groups {
		if tls13 && g.tls3 || !tls13 && g.tls2 {
			ids = append(ids, g.id)
		}
	}
	return ids
}
