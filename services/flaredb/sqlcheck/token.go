package sqlcheck

// TokenKind classifies a token the way SQLite's tokenizer (tokenize.c) does,
// so that rewriting never mistakes text inside a literal for SQL.
type TokenKind int

// Token kinds.
const (
	Space       TokenKind = iota // whitespace, or a UTF-8 BOM
	Comment                      // -- to end of line, or /* ... */ (may run to end of input)
	String                       // '...' with '' escapes
	Blob                         // x'..' / X'..'
	Ident                        // bare word: keyword or identifier
	QuotedIdent                  // "...", `...` or [...]
	Number                       // 12, 1.5e3, .5, 0x1F, 1_000
	Param                        // ?, ?NNN, :name, @name, #name, $name, $a::b(c)
	Punct                        // operators and punctuation: ; ( ) , . + - || -> ...
	Illegal                      // what SQLite would reject: unterminated literal, stray byte, 12abc
)

var kindNames = [...]string{"Space", "Comment", "String", "Blob", "Ident", "QuotedIdent", "Number", "Param", "Punct", "Illegal"}

func (k TokenKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "TokenKind(?)"
}

// Token is one lexeme of a statement; Text is sql[Off:Off+len(Text)], so the
// tokens of a string concatenate back to it exactly.
type Token struct {
	Kind TokenKind
	Off  int
	Text string
}

// Tokenize splits sql into tokens, following SQLite's sqlite3GetToken byte
// for byte (including where an illegal token ends), so token boundaries are
// those SQLite itself sees. It never fails: bad input yields Illegal tokens.
func Tokenize(sql string) []Token {
	var out []Token
	for off := 0; off < len(sql); {
		k, n := nextToken(sql[off:])
		out = append(out, Token{Kind: k, Off: off, Text: sql[off : off+n]})
		off += n
	}
	return out
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isXDigit(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }
func isAlpha(c byte) bool  { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// idChar is SQLite's IdChar: letters, digits, '_', '$' and every byte >= 0x80.
func idChar(c byte) bool { return isAlpha(c) || isDigit(c) || c == '_' || c == '$' || c >= 0x80 }

// isSpace is sqlite3Isspace (used inside $name(...) parameters).
func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// at returns s[i], or 0 past the end: SQLite's input is NUL-terminated.
func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// nextToken returns the kind and byte length of the token at the start of s
// (len(s) > 0).
func nextToken(s string) (TokenKind, int) {
	c := s[0]
	switch {
	case c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r':
		i := 1
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\f' || s[i] == '\r') {
			i++
		}
		return Space, i
	case c == '-':
		if at(s, 1) == '-' {
			i := 2
			for i < len(s) && s[i] != 0 && s[i] != '\n' {
				i++
			}
			return Comment, i
		}
		if at(s, 1) == '>' {
			if at(s, 2) == '>' {
				return Punct, 3
			}
			return Punct, 2
		}
		return Punct, 1
	case c == '/':
		if at(s, 1) != '*' || at(s, 2) == 0 {
			return Punct, 1
		}
		// "/*/" does not close: the search for "*/" starts at offset 2.
		for i := 2; i < len(s) && s[i] != 0; i++ {
			if s[i] == '*' && at(s, i+1) == '/' {
				return Comment, i + 2
			}
			if at(s, i+1) == 0 {
				return Comment, i + 1
			}
		}
		return Comment, len(s)
	case c == '(' || c == ')' || c == ';' || c == '+' || c == '*' || c == '%' || c == ',' || c == '&' || c == '~':
		return Punct, 1
	case c == '=':
		if at(s, 1) == '=' {
			return Punct, 2
		}
		return Punct, 1
	case c == '<':
		if d := at(s, 1); d == '=' || d == '>' || d == '<' {
			return Punct, 2
		}
		return Punct, 1
	case c == '>':
		if d := at(s, 1); d == '=' || d == '>' {
			return Punct, 2
		}
		return Punct, 1
	case c == '!':
		if at(s, 1) == '=' {
			return Punct, 2
		}
		return Illegal, 1
	case c == '|':
		if at(s, 1) == '|' {
			return Punct, 2
		}
		return Punct, 1
	case c == '\'' || c == '"' || c == '`':
		i := 1
		for ; i < len(s) && s[i] != 0; i++ {
			if s[i] == c {
				if at(s, i+1) == c {
					i++
					continue
				}
				if c == '\'' {
					return String, i + 1
				}
				return QuotedIdent, i + 1
			}
		}
		return Illegal, i
	case c == '[':
		i := 1
		for ; i < len(s) && s[i] != 0; i++ {
			if s[i] == ']' {
				return QuotedIdent, i + 1
			}
		}
		return Illegal, i
	case c == '.' && !isDigit(at(s, 1)):
		return Punct, 1
	case c == '.' || isDigit(c):
		return numberLen(s)
	case c == '?':
		i := 1
		for isDigit(at(s, i)) {
			i++
		}
		return Param, i
	case c == '$' || c == '@' || c == ':' || c == '#':
		return paramLen(s)
	case (c == 'x' || c == 'X') && at(s, 1) == '\'':
		i := 2
		for isXDigit(at(s, i)) {
			i++
		}
		k := Blob
		if at(s, i) != '\'' || i%2 != 0 {
			k = Illegal
			for i < len(s) && s[i] != 0 && s[i] != '\'' {
				i++
			}
		}
		if i < len(s) && s[i] != 0 {
			i++
		}
		return k, i
	case c == 0xEF && at(s, 1) == 0xBB && at(s, 2) == 0xBF:
		return Space, 3
	case isAlpha(c) || c == '_' || c >= 0x80:
		i := 1
		for idChar(at(s, i)) {
			i++
		}
		return Ident, i
	}
	return Illegal, 1
}

// numberLen mirrors the CC_DIGIT case, including '_' digit separators and
// the rule that identifier characters glued to a number make it illegal.
func numberLen(s string) (TokenKind, int) {
	i := 0
	digits := func(ok func(byte) bool) {
		for ok(at(s, i)) || at(s, i) == '_' {
			i++
		}
	}
	if s[0] == '0' && (at(s, 1) == 'x' || at(s, 1) == 'X') && isXDigit(at(s, 2)) {
		i = 3
		digits(isXDigit)
	} else {
		digits(isDigit)
		if at(s, i) == '.' {
			i++
			digits(isDigit)
		}
		if e := at(s, i); (e == 'e' || e == 'E') &&
			(isDigit(at(s, i+1)) || ((at(s, i+1) == '+' || at(s, i+1) == '-') && isDigit(at(s, i+2)))) {
			i += 2
			digits(isDigit)
		}
	}
	if !idChar(at(s, i)) {
		return Number, i
	}
	for idChar(at(s, i)) {
		i++
	}
	return Illegal, i
}

// paramLen mirrors CC_DOLLAR/CC_VARALPHA, including Tcl-style $a::b and
// $name(...) suffixes, which make "$x(random())" a single token.
func paramLen(s string) (TokenKind, int) {
	n, i := 0, 1
	for ; i < len(s) && s[i] != 0; i++ {
		c := s[i]
		if idChar(c) {
			n++
			continue
		}
		if c == '(' && n > 0 {
			for i++; i < len(s) && s[i] != 0 && !isSpace(s[i]) && s[i] != ')'; i++ {
			}
			if at(s, i) == ')' {
				return Param, i + 1
			}
			return Illegal, i
		}
		if c == ':' && at(s, i+1) == ':' {
			i++
			continue
		}
		break
	}
	if n == 0 {
		return Illegal, i
	}
	return Param, i
}
