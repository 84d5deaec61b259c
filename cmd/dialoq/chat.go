package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
	"github.com/dialoq/dialoq/storage/central"
	"github.com/dialoq/dialoq/storage/flowschema"
)

// maxLine bounds one line of input; a longer line is refused, not truncated, since a
// cut answer would be stored as if the user had meant it.
const maxLine = 16 << 10

// runtime is what every channel needs: definitions, texts, the engine and the place
// finished submissions go.
type runtime struct {
	set    *flows.Set
	cat    *locales.Catalog
	engine *flows.Engine
	schema *flowschema.Schema
}

func loadRuntime() (*runtime, error) {
	set, err := flows.Builtin()
	if err != nil {
		return nil, fmt.Errorf("load flows: %w", err)
	}
	cat, err := locales.Embedded()
	if err != nil {
		return nil, fmt.Errorf("load locales: %w", err)
	}
	return &runtime{set: set, cat: cat, engine: flows.NewEngine(set, cat), schema: flowschema.New(set, cat)}, nil
}

// openSink returns where submissions go: the central store named by CENTRAL_URL, or
// the embedded SQLite store under dataDir.
func (rt *runtime) openSink(ctx context.Context, dataDir string) (central.Poster, func(), error) {
	if url := os.Getenv("CENTRAL_URL"); url != "" {
		return central.NewClient(url, os.Getenv("CENTRAL_TOKEN"), nil), func() {}, nil
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", dataDir, err)
	}
	st, err := central.Open(ctx, filepath.Join(dataDir, "dialoq.db"))
	if err != nil {
		return nil, nil, fmt.Errorf("open embedded store: %w", err)
	}
	st = st.WithSchema(rt.schema)
	return st, func() { st.Close() }, nil
}

func dataDir() string {
	if d := os.Getenv("DIALOQ_DATA"); d != "" {
		return d
	}
	return "data"
}

// langFromEnv reads the terminal's locale (LANG=ru_RU.UTF-8) as Telegram's client
// language would be read.
func langFromEnv() string {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v, _, _ := strings.Cut(os.Getenv(k), ".")
		if v != "" && v != "C" && v != "POSIX" {
			return strings.ReplaceAll(v, "_", "-")
		}
	}
	return ""
}

func runChat(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, log *slog.Logger) int {
	fl := flag.NewFlagSet("chat", flag.ContinueOnError)
	fl.SetOutput(stderr)
	flow := fl.String("flow", "cso", "flow to run (see: dialoq flows list)")
	lang := fl.String("lang", "", "language code (default: from $LANG, else English)")
	code := fl.String("code", "", "organisation or campaign code recorded with the answers")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	rt, err := loadRuntime()
	if err != nil {
		fmt.Fprintln(stderr, "dialoq:", err)
		return 1
	}
	if _, ok := rt.set.Get(*flow); !ok {
		fmt.Fprintf(stderr, "dialoq: no flow %q; run 'dialoq flows list'\n", *flow)
		return 2
	}
	l := *lang
	if l == "" {
		l = langFromEnv()
	}
	if !rt.cat.Supported(l) {
		l = rt.cat.Match(l)
	}
	sink, closeSink, err := rt.openSink(ctx, dataDir())
	if err != nil {
		fmt.Fprintln(stderr, "dialoq:", err)
		return 1
	}
	defer closeSink()
	c := &chat{rt: rt, out: bufio.NewWriter(stdout), sink: sink, code: *code, log: log}
	return c.run(ctx, stdin, *flow, l)
}

type chat struct {
	rt      *runtime
	out     *bufio.Writer
	sink    central.Poster
	code    string
	log     *slog.Logger
	st      flows.State
	started time.Time
}

func (c *chat) t(id string, data map[string]any) string { return c.rt.cat.Text(c.st.Lang, id, data) }

func (c *chat) run(ctx context.Context, stdin io.Reader, flow, lang string) int {
	defer c.out.Flush()
	c.started = time.Now()
	if code := c.apply(ctx, flows.Input{Kind: flows.InStart, Flow: flow, Lang: lang}); code >= 0 {
		return code
	}
	in := bufio.NewReaderSize(stdin, 4096)
	for {
		fmt.Fprint(c.out, "> ")
		c.out.Flush()
		line, tooLong, err := readLine(in)
		if tooLong {
			fmt.Fprintln(c.out, c.t("ui.chat.too_long", nil))
			continue
		}
		if err != nil {
			fmt.Fprintln(c.out)
			fmt.Fprintln(c.out, c.t("ui.chat.eof", nil))
			return 3
		}
		if ctx.Err() != nil {
			return 130
		}
		input, ok := c.parse(line)
		if !ok {
			continue
		}
		if code := c.apply(ctx, input); code >= 0 {
			return code
		}
	}
}

// readLine reads one line; a line over maxLine is consumed whole and reported.
func readLine(r *bufio.Reader) (string, bool, error) {
	var b []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			if len(b) > 0 && errors.Is(err, io.EOF) {
				return string(b), false, nil
			}
			return "", false, err
		}
		if len(b)+len(chunk) > maxLine {
			for isPrefix {
				if _, isPrefix, err = r.ReadLine(); err != nil {
					break
				}
			}
			return "", true, nil
		}
		b = append(b, chunk...)
		if !isPrefix {
			return strings.TrimSuffix(string(b), "\r"), false, nil
		}
	}
}

// parse turns a line into an input; commands are handled here when they need no engine.
func (c *chat) parse(line string) (flows.Input, bool) {
	trimmed := strings.TrimSpace(line)
	if !strings.HasPrefix(trimmed, "/") {
		return flows.Input{Kind: flows.InText, Text: line}, true
	}
	cmd, arg, _ := strings.Cut(trimmed, " ")
	switch strings.ToLower(cmd) {
	case "/back":
		return flows.Input{Kind: flows.InBack}, true
	case "/skip":
		return flows.Input{Kind: flows.InSkip}, true
	case "/cancel", "/quit", "/stop":
		return flows.Input{Kind: flows.InCancel}, true
	case "/restart":
		return flows.Input{Kind: flows.InRestart}, true
	case "/help":
		fmt.Fprintln(c.out, c.t("ui.chat.commands", nil))
		return flows.Input{Kind: flows.InRepeat}, true
	case "/lang", "/language":
		lang := strings.ToLower(strings.TrimSpace(arg))
		if !c.rt.cat.Supported(lang) {
			fmt.Fprintln(c.out, c.t("ui.chat.unknown_lang", map[string]any{"Lang": arg, "Langs": strings.Join(c.rt.cat.Langs(), ", ")}))
			return flows.Input{}, false
		}
		return flows.Input{Kind: flows.InLang, Lang: lang}, true
	}
	fmt.Fprintln(c.out, c.t("ui.chat.unknown_command", map[string]any{"Command": cmd}), c.t("ui.chat.commands", nil))
	return flows.Input{}, false
}

// apply steps the engine and shows the result; it returns an exit code when the chat
// is over, else -1.
func (c *chat) apply(ctx context.Context, in flows.Input) int {
	st, out := c.rt.engine.Step(c.st, in)
	c.st = st
	if in.Kind == flows.InLang {
		fmt.Fprintln(c.out, c.t("ui.chat.lang_set", map[string]any{"Name": c.t("ui.language_name", nil)}))
	}
	for _, n := range out.Notices {
		fmt.Fprintln(c.out, n)
	}
	if out.Error != "" {
		fmt.Fprintln(c.out, "! "+out.Error)
	}
	if out.Prompt != nil {
		c.render(out.Prompt)
	}
	if out.Done != nil {
		return c.save(ctx, out.Done)
	}
	if out.Cancelled || (out.Idle && out.Prompt == nil) {
		return 0
	}
	return -1
}

func (c *chat) render(p *flows.Prompt) {
	w := c.out
	fmt.Fprintln(w)
	if p.Progress.Text != "" {
		fmt.Fprintf(w, "[%s]\n", p.Progress.Text)
	}
	fmt.Fprintln(w, p.Text)
	if p.Item != "" {
		fmt.Fprintf(w, "» %s\n", p.Item)
	}
	if p.Hint != "" {
		fmt.Fprintf(w, "  %s\n", p.Hint)
	}
	switch {
	case p.Type == flows.TypeNote:
		fmt.Fprintln(w, c.t("ui.chat.continue", nil))
	case p.Type == flows.TypeRating || p.Type == flows.TypeMatrix:
		var vals []string
		for _, o := range p.Options {
			if o.ID == o.Label {
				vals = append(vals, o.ID)
			} else {
				vals = append(vals, o.ID+" ("+o.Label+")")
			}
		}
		fmt.Fprintln(w, c.t("ui.chat.scale", map[string]any{"Values": strings.Join(vals, " · ")}))
	case len(p.Options) > 0:
		for i, o := range p.Options {
			mark := " "
			if o.Picked {
				mark = "✓"
			}
			fmt.Fprintf(w, " %s %2d) %s\n", mark, i+1, o.Label)
		}
		if p.Multi {
			fmt.Fprintln(w, c.t("ui.chat.multi", nil))
		}
	case p.Input != "":
		fmt.Fprintln(w, p.Input)
	}
	if p.Current != "" && !p.Multi {
		fmt.Fprintln(w, c.t("ui.chat.current", map[string]any{"Answer": p.Current}))
	}
	if !p.Required && p.Type != flows.TypeNote {
		fmt.Fprintln(w, c.t("ui.chat.skip", nil))
	}
}

// save posts the submission; when that fails the answers go to a file so nothing the
// user typed is lost.
func (c *chat) save(ctx context.Context, done *flows.Completion) int {
	sub := flowschema.Submission(done, flowschema.Meta{Code: c.code, StartedAt: c.started, FinishedAt: time.Now()})
	err := c.sink.Post(ctx, sub)
	if err == nil {
		fmt.Fprintln(c.out, c.t("ui.chat.saved", map[string]any{"ID": sub.ID}))
		return 0
	}
	c.log.Error("save submission", "id", sub.ID, "err", err)
	file := filepath.Join(dataDir(), "unsent-"+sub.ID+".json")
	b, _ := json.MarshalIndent(sub, "", "  ")
	if werr := os.WriteFile(file, b, 0o600); werr != nil {
		c.log.Error("write unsent submission", "file", file, "err", werr)
	}
	fmt.Fprintln(c.out, c.t("ui.chat.save_failed", map[string]any{"File": file}))
	return 1
}
