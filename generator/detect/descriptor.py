"""From a detection to the questions it leaves open, the commented shipforge.yaml, and --explain.

Never invent: a port or health route the repository does not show is not written as a value.
Interactively it is asked; with `--yes` it becomes a commented `# guessed:` line the user can
check and uncomment. Only what the descriptor cannot do without (a project name, a command)
is written as a value with `--yes`, and its comment says it was guessed.
"""

from __future__ import annotations

from generator.detect.base import (
    DATASTORE_VERSIONS,
    DEFAULT_COMMANDS,
    DEFAULT_HEALTH,
    DEFAULT_PORTS,
    DEFAULT_PROJECT,
    Detection,
    Question,
    Service,
    Why,
    dns_label,
)
from generator.formats import comment, yaml_str


def questions(detection: Detection) -> list[Question]:
    """What detection could not find, each with the default offered and why."""
    asked: list[Question] = []
    if not detection.name:
        asked.append(
            Question(
                "project.name",
                "Project name (lowercase letters, digits, -)",
                DEFAULT_PROJECT,
                "no usable project name found",
                required=True,
            )
        )
    for service in detection.services:
        where = f"services.{service.name}"
        if service.command is None:
            default = (service.default_command or DEFAULT_COMMANDS[service.runtime]).replace(
                "{port}", str(service.port or DEFAULT_PORTS[service.runtime])
            )
            asked.append(
                Question(
                    f"{where}.command",
                    f"Start command of {service.name}",
                    default,
                    "no start command found",
                    required=True,
                )
            )
        unknown_kind = service.web is None and service.command is None
        if unknown_kind:
            asked.append(
                Question(
                    f"{where}.port",
                    f"Port {service.name} listens on (empty for a worker)",
                    "",
                    "no web framework found: a worker (no port)",
                )
            )
        elif service.web and service.port is None:
            asked.append(
                Question(
                    f"{where}.port",
                    f"Port {service.name} listens on",
                    str(DEFAULT_PORTS[service.runtime]),
                    "the code does not show a port",
                )
            )
        if unknown_kind or (service.web and service.health is None):
            asked.append(
                Question(
                    f"{where}.health",
                    f"HTTP health path of {service.name}",
                    DEFAULT_HEALTH,
                    "no health route found: add one that answers 200",
                    # Whether it is a web service at all is asked as its port.
                    needs=f"{where}.port" if unknown_kind or service.port is None else "",
                )
            )
    return asked


def apply_answers(detection: Detection, answers: dict[str, str]) -> None:
    """Put the answered values into the detection."""
    for key, value in answers.items():
        if key == "project.name":
            detection.name = dns_label(value) or DEFAULT_PROJECT
            detection.name_why = Why("answered")
            continue
        _, name, attribute = key.split(".", 2)
        service = next(s for s in detection.services if s.name == name)
        if attribute == "command":
            service.command = value.strip()
        elif attribute == "port":
            service.port = int(value) if value.strip() else None
            service.web = service.port is not None
        elif attribute == "health":
            service.health = value.strip() if value.strip().startswith("/") else "/" + value.strip()
        service.why[attribute] = Why("answered")
    for service in detection.services:
        if service.command and "{port}" in service.command:
            # The command binds $PORT, which no shell expands: the port it is given.
            service.command = service.command.replace(
                "{port}", str(service.port or DEFAULT_PORTS[service.runtime])
            )


def guess_port_placeholders(detection: list[Service]) -> None:
    """A command that binds $PORT gets the runtime's usual port: it binds what it is given."""
    for service in detection:
        if service.web and service.port is None and service.command and "{port}" in service.command:
            service.port = DEFAULT_PORTS[service.runtime]
            service.why["port"] = Why(
                f"port {service.port}: the command binds $PORT, which shipforge sets to it",
                service.why.get("command", Why("")).file,
                service.why.get("command", Why("")).line,
            )
            service.command = service.command.replace("{port}", str(service.port))


def render_descriptor(
    detection: Detection, schema: str, guessed: dict[str, Question] | None = None
) -> str:
    """The commented shipforge.yaml. `guessed` holds the questions --yes left unanswered."""
    guessed = guessed or {}

    def note(key: str, why: Why | None) -> str:
        if key in guessed:
            return f"  # guessed ({comment(guessed[key].why)}): check it"
        return f"  # {comment(why.text)}" if why and why.text else ""

    lines = [
        f"# yaml-language-server: $schema={schema}",
        "# Written by `shipforge init` from what it found in this repository. Comments say where",
        "# each value came from (`shipforge init --explain` gives the file and line); review",
        "# the `# guessed:` lines, then run `shipforge validate` and `shipforge generate`.",
        "version: 1",
        "project:",
        f"  name: {yaml_str(detection.name)}{note('project.name', detection.name_why)}",
        "services:",
    ]
    for service in detection.services:
        lines += _service_lines(service, guessed, note)
    if detection.datastores:
        lines.append("datastores:")
        for store in detection.datastores:
            lines.append(f"  {store}: {{}}  # version: the default ({DATASTORE_VERSIONS[store]})")
    lines += [
        "# targets:  # defaults: docker, compose and env; also pm2, kubernetes,",
        "#   kubernetes: true  # terraform (aws-ecs | gcp-cloud-run | azure-container-apps)",
        "#   ci: github  # and ci (github | gitlab)",
    ]
    for note_text in detection.notes:
        lines.append(f"# note: {comment(note_text)}")
    return "\n".join(lines) + "\n"


def _service_lines(service: Service, guessed: dict[str, Question], note: object) -> list[str]:
    assert callable(note)
    where = f"services.{service.name}"
    why = service.why.get
    lines = [f"  {service.name}:"]
    for warning in dict.fromkeys(service.warnings):
        lines.append(f"    # warning: {comment(warning)}")
    lines.append(f"    runtime: {yaml_str(service.runtime)}")
    if service.version:
        lines.append(f"    version: {yaml_str(service.version)}{note('', why('version'))}")
    if service.path != ".":
        lines.append(f"    path: {yaml_str(service.path)}")
    if service.working_dir:
        lines.append(
            f"    working_dir: {yaml_str(service.working_dir)}{note('', why('working_dir'))}"
        )
    lines.append(
        f"    package_manager: {yaml_str(service.package_manager)}"
        f"{note('', why('package_manager'))}"
    )
    if service.build:
        lines.append(f"    build: {yaml_str(service.build)}{note('', why('build'))}")
    lines.append(
        f"    command: {yaml_str(service.command)}{note(where + '.command', why('command'))}"
    )
    if service.port is not None:
        lines.append(f"    port: {service.port}{note(where + '.port', why('port'))}")
    elif where + ".port" in guessed:
        question = guessed[where + ".port"]
        if question.default:
            lines.append(
                f"    # guessed: port: {question.default}  # {comment(question.why)}: "
                "uncomment it with the port the code listens on"
            )
        else:
            lines.append(f"    # guessed: no port, a worker  # {comment(question.why)}")
    if service.port is not None:
        if service.health is not None:
            lines.append(
                f"    health: {yaml_str(service.health)}{note(where + '.health', why('health'))}"
            )
        else:
            # Left out, the health path would be the default /healthz, which this app does
            # not serve: null says it has none, and every check connects to the port instead.
            lines.append(
                "    health: null  # no health route found: the checks connect to the port"
            )
            lines.append(
                f"    # guessed: health: {DEFAULT_HEALTH}  # no health route found: add one "
                "that answers 200 and set it here"
            )
        lines.append(
            "    # public: true  # to serve it from the internet (ingress / load balancer)"
        )
    if service.release:
        lines.append(f"    release: {yaml_str(service.release)}{note('', why('release'))}")
    if service.uses:
        uses = ", ".join(yaml_str(u) for u in service.uses)
        lines.append(f"    uses: [{uses}]{note('', why('uses'))}")
    if service.env:
        lines.append("    env:")
        for key, value in sorted(service.env.items()):
            lines.append(f"      {key}: {yaml_str(value)}")
    if service.secrets:
        secrets = ", ".join(yaml_str(s) for s in service.secrets)
        lines.append(f"    secrets: [{secrets}]{note('', why('secrets'))}")
    return lines


def explain(detection: Detection, guessed: dict[str, Question]) -> str:
    """Each detected value with the file and line it came from, for `init --explain`."""
    out = [
        f"project.name = {detection.name}  <- {detection.name_why.where()}: {detection.name_why.text}"
    ]
    fields = ("version", "working_dir", "package_manager", "build", "command", "port", "health")
    for service in detection.services:
        base = f"services.{service.name}"
        out.append(f"{base}.path = {service.path}")
        for key in (*fields, "release", "uses", "secrets"):
            value = getattr(service, key)
            if value in (None, "", []):
                if f"{base}.{key}" in guessed:
                    out.append(f"{base}.{key}: not found ({guessed[base + '.' + key].why})")
                continue
            shown = ", ".join(value) if isinstance(value, list) else value
            why = service.why.get(key)
            if f"{base}.{key}" in guessed:
                out.append(f"{base}.{key} = {shown}  <- guessed: {guessed[base + '.' + key].why}")
            elif why:
                out.append(f"{base}.{key} = {shown}  <- {why.where()}: {why.text}")
            else:
                out.append(f"{base}.{key} = {shown}")
        if service.web and service.health is None and f"{base}.health" not in guessed:
            out.append(f"{base}.health: not found (no health route in the code)")
    for text in detection.notes:
        out.append(f"note: {text}")
    return "\n".join(out) + "\n"
