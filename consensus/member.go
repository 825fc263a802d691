package consensus

import (
	"encoding/json"
	"errors"
	"strings"
)

// MemberContext is the member data MetaStore stores in Raft's
// configuration (Peer.Context and ConfChange contexts): the member's name
// and peer URLs. Transports read the URLs from it.
type MemberContext struct {
	Name     string   `json:"name,omitempty"`
	PeerURLs []string `json:"peerURLs"`
	// IsPromote marks the AddNode that promotes a learner (etcd's
	// ConfigChangeContext.IsPromote).
	IsPromote bool `json:"isPromote,omitempty"`
}

// Encode returns the context's wire form (JSON).
func (m MemberContext) Encode() []byte {
	b, _ := json.Marshal(m) // cannot fail for strings
	return b
}

// ParseMemberContext decodes a context written by Encode. For contexts
// written by hand it also accepts a comma-separated list of URLs.
func ParseMemberContext(b []byte) (MemberContext, error) {
	var m MemberContext
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &m); err != nil {
			return m, err
		}
		return m, nil
	}
	for _, u := range strings.Split(string(b), ",") {
		if u = strings.TrimSpace(u); u != "" {
			m.PeerURLs = append(m.PeerURLs, u)
		}
	}
	if len(m.PeerURLs) == 0 {
		return m, errors.New("consensus: member context has no peer URLs")
	}
	return m, nil
}
