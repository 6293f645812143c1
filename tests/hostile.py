"""Descriptor values that must land in every format as the very strings written.

One set for every target's tests: YAML 1.1 words, octal-looking numbers, GitHub, Jinja, shell,
Kubernetes, compose and HCL interpolation syntax, quotes, line breaks, backslashes, Unicode.
"""

HOSTILE_VALUES = {
    "ON": "on",
    "Y": "y",
    "OCTAL": "0755",
    "GHA": "${{ secrets.X }}",
    "JINJA": "{{ x }} {% raw %}",
    "SUBSHELL": "$(rm -rf /)",
    "KUBE_VAR": "$(HOME)",
    "VARIABLE": "${HOME}",
    "TEMPLATE": "${var.region}",
    "DIRECTIVE": "%{ if true }x%{ endif }",
    "ESCAPED": "$${already} %%{escaped}",
    "NEWLINE": "line one\nline two\r\n\ttabbed",
    "QUOTES": 'it\'s "quoted"',
    "HASH": "a # not a comment",
    "BACKSLASH": "C:\\temp\\new",
    "UNICODE": "héllo ✓",
    "SEPARATORS": "a\u2028b\u0085c",
}
