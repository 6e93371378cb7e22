package sqlcheck

import "strings"

// Split cuts sql into statements at the semicolons that end them, as
// sqlite3_complete() does: a ';' inside a literal, identifier or comment
// does not count, and a CREATE TRIGGER runs until ";END;" so the ';' that
// end its body's statements do not split it. Each statement is returned
// without its ';' and trimmed of spaces; statements that hold only
// whitespace and comments are dropped.
func Split(sql string) []string {
	var out []string
	for _, sp := range splitSpans(Tokenize(sql)) {
		out = append(out, strings.TrimSpace(sql[sp.start:sp.end]))
	}
	return out
}

// span is a statement's byte range (without its ';') and its token range.
type span struct {
	start, end  int // bytes
	first, last int // tokens [first, last)
}

// complete.c's token classes and transition table.
const (
	ckSemi = iota
	ckWS
	ckOther
	ckExplain
	ckCreate
	ckTemp
	ckTrigger
	ckEnd
)

var completeTrans = [8][8]uint8{
	/* 0 INVALID */ {1, 0, 2, 3, 4, 2, 2, 2},
	/* 1 START   */ {1, 1, 2, 3, 4, 2, 2, 2},
	/* 2 NORMAL  */ {1, 2, 2, 2, 2, 2, 2, 2},
	/* 3 EXPLAIN */ {1, 3, 3, 2, 4, 2, 2, 2},
	/* 4 CREATE  */ {1, 4, 2, 2, 2, 4, 5, 2},
	/* 5 TRIGGER */ {6, 5, 5, 5, 5, 5, 5, 5},
	/* 6 SEMI    */ {6, 6, 5, 5, 5, 5, 5, 7},
	/* 7 END     */ {1, 7, 5, 5, 5, 5, 5, 5},
}

func completeClass(t Token) int {
	switch t.Kind {
	case Space, Comment:
		return ckWS
	case Punct:
		if t.Text == ";" {
			return ckSemi
		}
	case Ident:
		switch strings.ToUpper(t.Text) {
		case "EXPLAIN":
			return ckExplain
		case "CREATE":
			return ckCreate
		case "TEMP", "TEMPORARY":
			return ckTemp
		case "TRIGGER":
			return ckTrigger
		case "END":
			return ckEnd
		}
	}
	return ckOther
}

// splitSpans returns the non-empty statements of toks.
func splitSpans(toks []Token) []span {
	var out []span
	state, first, meaningful := 0, 0, false
	flush := func(last int) {
		if meaningful {
			start, end := toks[first].Off, toks[last-1].Off+len(toks[last-1].Text)
			out = append(out, span{start: start, end: end, first: first, last: last})
		}
	}
	for i, t := range toks {
		cls := completeClass(t)
		state = int(completeTrans[state][cls])
		if cls == ckSemi && state == 1 {
			flush(i)
			first, meaningful = i+1, false
			continue
		}
		if cls != ckWS {
			meaningful = true
		}
	}
	flush(len(toks))
	return out
}
