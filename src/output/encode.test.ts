import { describe, expect, it } from "vitest";
import { Redactor } from "../registry/redact.js";
import {
  ENCODED_SECRET_FORMS,
  guardedOutput,
  jsonText,
  markdownCode,
  markdownText,
  slackText,
  textLines,
  textValue,
} from "./encode.js";

/** Values honest users have: these must come out exactly as they went in (text sinks). */
const HONEST = [
  "registry.k8s.io/kube-apiserver",
  "[::1]:5000/prod/app",
  "sha256:0123456789abcdef",
  "images/my-project/images.yaml:3:5",
  "v1.2.3-rc.1_build",
  "café, naïve, 日本語, 🚀",
  "50% done… (1/2)",
];

const RAW_UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

describe("textValue", () => {
  it("leaves honest values alone", () => {
    for (const value of HONEST) expect(textValue(value)).toBe(value);
  });

  it("writes control, bidi and invisible characters as visible escapes", () => {
    expect(textValue("a\nb\rc\td")).toBe("a\\nb\\rc\\td");
    expect(textValue("\u001b[31mred\u001b]8;;http://x\u0007")).toBe(
      "\\u001b[31mred\\u001b]8;;http://x\\u0007",
    );
    expect(textValue("\u009b31m \u0085 \u007f")).toBe("\\u009b31m \\u0085 \\u007f");
    expect(textValue("\u202eevil\u202c \u2066iso\u2069 \u200bzw \u00adsoft \ufeffbom")).toBe(
      "\\u202eevil\\u202c \\u2066iso\\u2069 \\u200bzw \\u00adsoft \\ufeffbom",
    );
    expect(textValue("line\u2028para\u2029")).toBe("line\\u2028para\\u2029");
    // Tag characters (astral, invisible) and a lone surrogate, as UTF-16 escapes.
    expect(textValue("x\u{e0041}y\ud800z")).toBe("x\\udb40\\udc41y\\ud800z");
  });

  it("breaks CI runner commands: `::` at the start (after any whitespace) and `##[` anywhere", () => {
    expect(textValue("::add-mask::x")).toBe("\\u003a:add-mask::x");
    expect(textValue(" \u00a0\u3000::error::x")).toBe(" \u00a0\u3000\\u003a:error::x");
    // An escaped tab is a backslash: the line no longer starts with whitespace and `::`.
    expect(textValue("\t::error::x")).toBe("\\t::error::x");
    expect(textValue("a\n::warning::b")).toBe("a\\n::warning::b");
    expect(textValue("x ##[error]y ##vso[task.setvariable]z ##teamcity[m]")).toBe(
      "x \\u0023#[error]y \\u0023#vso[task.setvariable]z \\u0023#teamcity[m]",
    );
    expect(textValue("middle :: colons, # one ## two")).toBe("middle :: colons, # one ## two");
  });

  it("is idempotent, so values and whole lines may both be encoded", () => {
    const hostile = "\n::x::y \u001b[1m ##[e] \u202e ::";
    expect(textValue(textValue(hostile))).toBe(textValue(hostile));
  });

  it("textLines encodes each line and joins them", () => {
    expect(textLines(["one", "::two::x", "three\nfour"])).toBe("one\n\\u003a:two::x\nthree\\nfour");
  });
});

describe("guardedOutput", () => {
  it("keeps the layout (line feeds, tabs) and guards every line", () => {
    expect(guardedOutput("a\tb\n  ::error::x\ny ##[z]\n", { terminal: false })).toBe(
      "a\tb\n  \\u003a:error::x\ny \\u0023#[z]\n",
    );
    expect(guardedOutput("\u001b[2J\u202e", { terminal: true })).toBe("\\u001b[2J\\u202e");
  });

  it("lets carriage returns through to a terminal (the progress line) and nowhere else", () => {
    expect(guardedOutput("\rcopying 1/2", { terminal: true })).toBe("\rcopying 1/2");
    expect(guardedOutput("x\r::error::y", { terminal: false })).toBe("x\\r::error::y");
  });

  it("changes no honest text", () => {
    const text = `${HONEST.join("\n")}\n| a | b |\n- **error**: \`x\`\n`;
    expect(guardedOutput(text, { terminal: false })).toBe(text);
  });
});

describe("markdownText", () => {
  it("escapes everything that can start markup, HTML, an entity or a table cell", () => {
    expect(markdownText("<img src=x> <!-- ![i](u) [l](u) *b* _i_ ~s~ $m$ &#x202e; `c` a|b \\ #")).toBe(
      "\\<img src=x\\> \\<\\!-- \\!\\[i\\](u) \\[l\\](u) \\*b\\* \\_i\\_ \\~s\\~ \\$m\\$ \\&\\#x202e; \\`c\\` a\\|b \\\\ \\#",
    );
  });

  it("makes control characters visible escapes that render as written", () => {
    expect(markdownText("a\nb\u202e")).toBe("a\\\\nb\\\\u202e");
    expect(markdownText("x ##[error]")).toBe("x \\#\\#\\[error\\]");
  });

  it("leaves plain words, paths and digests as they are", () => {
    expect(markdownText("refused tag move: v1.2.3 points at sha256:0123 in registry.k8s.io/prod/app")).toBe(
      "refused tag move: v1.2.3 points at sha256:0123 in registry.k8s.io/prod/app",
    );
  });
});

describe("markdownCode", () => {
  it("is a plain code span for honest values", () => {
    expect(markdownCode("app")).toBe("`app`");
    expect(markdownCode("images/web/images.yaml:3:5")).toBe("`images/web/images.yaml:3:5`");
  });

  it("uses a fence longer than any backtick run inside and pads what touches the fence", () => {
    expect(markdownCode("a`b")).toBe("``a`b``");
    expect(markdownCode("``x```")).toBe("```` ``x``` ````");
    expect(markdownCode(" lead")).toBe("`  lead `");
  });

  it("escapes pipes (a table splits cells at them, code spans included) and control characters", () => {
    expect(markdownCode("a|b")).toBe("`a\\|b`");
    expect(markdownCode("x\ny\u001b ##[e]")).toBe("`x\\ny\\u001b \\u0023#[e]`");
    expect(markdownCode("")).toBe("");
  });
});

describe("jsonText", () => {
  it("is JSON that decodes to the same value, with nothing unsafe raw", () => {
    const value = { name: "a\u202eb\u200b\u0085\u2028 ##[error] \u001b", list: ["::x::", 1, null] };
    const text = jsonText(value, 2);
    expect(JSON.parse(text)).toEqual(value);
    expect(text.replaceAll("\n", "")).not.toMatch(RAW_UNSAFE);
    expect(text).not.toContain("##[");
    expect(text.split("\n")).toHaveLength(JSON.stringify(value, null, 2).split("\n").length);
  });

  it("is plain JSON.stringify for honest values", () => {
    const value = { image: "registry.k8s.io/app", tags: ["v1"], position: { line: 3 } };
    expect(jsonText(value, 2)).toBe(JSON.stringify(value, null, 2));
    expect(jsonText(value)).toBe(JSON.stringify(value));
  });
});

describe("slackText", () => {
  it("escapes Slack's control characters and makes the rest inert", () => {
    expect(slackText("<!channel> & <http://x|y>\n\u001b ##[e]")).toBe(
      "&lt;!channel&gt; &amp; &lt;http://x|y&gt;\\n\\u001b \\u0023#[e]",
    );
  });
});

describe("ENCODED_SECRET_FORMS", () => {
  it("lets a redactor find a secret after any sink encoded it", () => {
    const secret = 'p_w*"d\\<x>';
    const redactor = new Redactor({ encodings: ENCODED_SECRET_FORMS });
    redactor.add(secret);
    for (const encoded of [
      textValue(`x ${secret} y`),
      markdownText(`x ${secret} y`),
      jsonText({ message: `x ${secret} y` }),
      slackText(`x ${secret} y`),
    ]) {
      expect(redactor.redact(encoded)).not.toContain(secret);
      expect(redactor.redact(encoded)).toContain("REDACTED");
    }
  });
});
