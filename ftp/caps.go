package ftp

import "strings"

// Feature names (RFC 2389 §3, RFC 4217 §6, RFC 2428, RFC 3659).
const (
	FeatAUTH = "AUTH"
	FeatPBSZ = "PBSZ"
	FeatPROT = "PROT"
	FeatEPSV = "EPSV"
	FeatMLST = "MLST"
	FeatSIZE = "SIZE"
	FeatMDTM = "MDTM"
	FeatUTF8 = "UTF8"
)

// normalizeFeat upper-cases the keyword of a feature line and keeps its
// arguments as sent, single-spaced. It returns "" for an empty line.
func normalizeFeat(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	f[0] = strings.ToUpper(f[0])
	return strings.Join(f, " ")
}

// parseFeat turns a 211 reply to FEAT into features (RFC 2389 §3.2): the
// lines between the first and the last, each starting with a space. A
// one-line 211 means no features. Lines without the leading space are
// taken too (some servers omit it), less their "211-" prefix, which
// readReply already removed.
func parseFeat(r Reply) []string {
	if len(r.Lines) < 3 {
		return nil
	}
	feats := make([]string, 0, len(r.Lines)-2)
	for _, l := range r.Lines[1 : len(r.Lines)-1] {
		if f := normalizeFeat(l); f != "" {
			feats = append(feats, f)
		}
	}
	return feats
}

// featArgs returns the arguments of the feature kw, split on spaces and
// semicolons, and whether it is present. Several lines with the same
// keyword (vsftpd sends "AUTH SSL" and "AUTH TLS") are merged.
func featArgs(feats []string, kw string) ([]string, bool) {
	var args []string
	found := false
	for _, f := range feats {
		name, rest, _ := strings.Cut(f, " ")
		if name != kw {
			continue
		}
		found = true
		args = append(args, strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ';' })...)
	}
	return args, found
}

// offersTLS reports whether the features advertise the TLS upgrade: an
// AUTH feature naming TLS, TLS-C or SSL (RFC 4217 §6).
func offersTLS(feats []string) bool {
	args, _ := featArgs(feats, FeatAUTH)
	for _, a := range args {
		switch strings.ToUpper(a) {
		case "TLS", "TLS-C", "SSL":
			return true
		}
	}
	return false
}
