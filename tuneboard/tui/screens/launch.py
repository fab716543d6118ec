"""The launch form: pick an experiment, change its declared parameters, queue one or more runs."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Header, Input, Label, Select, Static

from tuneboard.config.sweeps import SweepPlan, plan_sweep, run_count
from tuneboard.engine.sweeper import launch_sweep, prepare_sweep
from tuneboard.sdk.errors import ConfigError, TuneboardError
from tuneboard.tui import collector
from tuneboard.tui.launch_form import (
    FormField,
    FormSection,
    check_override,
    form_sections,
    grid_keys,
    override_for,
    validate_all,
    variants,
)
from tuneboard.tui.launching import launch_all
from tuneboard.tui.messages import RunsChanged
from tuneboard.tui.screens.base import BaseScreen
from tuneboard.tui.widgets.field_preview import FieldList, FieldPreview
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.ui.safe import safe_text, visible

# Field rows mounted at a time after the first screenful (see `LaunchScreen`).
ROWS_PER_BATCH = 20


class LaunchScreen(BaseScreen):
    """A form generated from each stage's declared parameters; launching returns to Runs.

    A pipeline's form has a hundred fields, and Textual styles and lays out every widget
    before the first frame. So each field is drawn as one line of text (`FieldPreview`)
    until it takes the focus, when its real row (label, editor, help) replaces it; a field
    never edited holds its starting value. And a screenful of fields comes with the screen
    (`form_shown`), the rest in batches after it is on screen (`form_ready` once all are).
    """

    # Focused as the screen shows. Textual would focus the scrolling form, which restyles
    # all of it, and again when the picker then took the focus from it.
    AUTO_FOCUS = "#experiment"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+l", "launch", "Launch", priority=True),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, experiment: str | None = None) -> None:
        super().__init__()
        self.requested = experiment
        self.names: tuple[str, ...] = ()
        self.experiment = ""
        self.sections: list[FormSection] = []
        # The fields edited so far, by editor id (the others are still previews).
        self.widgets: dict[str, tuple[FormField, Widget, Static]] = {}
        self._previewed: dict[str, tuple[FormField, int]] = {}  # by preview id
        self.errors: dict[str, str] = {}
        self.launching = False
        self.form_shown: str | None = None  # the experiment whose first fields are on screen
        self.form_ready: str | None = None  # ... whose every field is mounted
        self._building = asyncio.Lock()
        self._rest: list[Widget] = []  # field rows still to mount
        self._generation = 0  # a new form voids the batches of the last one
        self._reopened = False
        self._built_with: object = None  # the plugin registry the fields were built from
        self._collector_paused = False

    def compose(self) -> ComposeResult:
        """Experiment picker, the generated fields, and the copies/grid options."""
        self._pause_collector()
        names = self.names = self.tb.project.experiment_names
        wanted = self.requested
        self.experiment = wanted if wanted in names else (names[0] if names else "")
        yield Header()
        with FormScroll(id="launch-form"):
            with Horizontal(classes="field"):
                yield Label("experiment", classes="field-name")
                yield Select(
                    [(safe_text(n), n) for n in self.names],
                    value=self.experiment,
                    allow_blank=False,
                    id="experiment",
                    compact=True,
                )
                yield Static(id="description", classes="field-help")
            yield Static(id="form-error", classes="error-banner")
            # The first experiment's fields are composed with the screen: mounted later, they
            # cost a second round of styling and layout before the form shows.
            yield FieldList(*self._first_rows(self._field_rows(self.experiment)), id="fields")
            yield Label("launch", classes="section")
            with Horizontal(classes="field"):
                yield Label("copies", classes="field-name")
                yield Input("1", id="copies", type="integer", compact=True)
                yield Static("runs per setting, each with the next seed", classes="field-help")
            with Horizontal(classes="field"):
                yield Label("grid over", classes="field-name")
                yield Select[str]([], id="grid-key", prompt="(no grid)", compact=True)
                yield Input(placeholder="values, e.g. 1e-3, 3e-4", id="grid-values", compact=True)
            with Horizontal(classes="field", id="sweep-row"):
                yield Label("sweep", classes="field-name")
                yield Checkbox("run it", True, id="use-sweep", compact=True)
                yield Static(id="sweep-note", classes="field-help")
            with Horizontal(id="launch-buttons"):
                yield Button("Launch  ctrl+l", id="launch", variant="primary", compact=True)
                yield Static(id="launch-note", classes="hint")
        yield WrappingFooter()

    async def on_mount(self) -> None:
        """Fill in what goes with the first experiment's fields (composed with the screen)."""
        self.sub_title = "launch"
        self.query_one("#form-error").display = False
        async with self._building:
            self._fields_shown(self.experiment)
        self._mount_rest_after_frame(self.experiment)

    def reopen(self, experiment: str | None) -> None:
        """Have the kept form show as if new when it shows next, on `experiment` if given.

        Only an opening resets it: showing again from under the command palette or the
        keys help keeps what was typed.
        """
        self.requested = experiment
        self._reopened = True

    async def on_screen_resume(self) -> None:
        """Reopened (see `reopen`): as if new, on the experiment asked for, with its values
        from tuneboard.toml and fields built from the plugins loaded now."""
        if not self._reopened:
            return
        self._reopened = False
        if not self.launching:
            self.query_one("#launch-note", Static).update("")
            self.query_one("#launch", Button).disabled = False
            self._reset_launch_options()
        self._show_error(None)
        wanted = self.requested
        if wanted in self.names and wanted != self.experiment:
            self.query_one("#experiment", Select).value = wanted  # builds its form (`_changed`)
        elif self.tb.services_ready and self.tb.registry is not self._built_with:
            await self.build_form(self.experiment)  # plugins were installed meanwhile
        else:
            for form_field, editor, _ in self.widgets.values():
                _set_value(editor, _initial_value(form_field))  # only those changed: cheap

    def _reset_launch_options(self) -> None:
        _set_value(self.query_one("#copies", Input), "1")
        _set_value(self.query_one("#grid-key", Select), Select.NULL)
        _set_value(self.query_one("#grid-values", Input), "")
        _set_value(self.query_one("#use-sweep", Checkbox), True)

    @property
    def raw(self) -> dict[str, Any]:
        """The chosen experiment's table as written in tuneboard.toml."""
        return self.tb.project.raw_experiment(self.experiment)

    async def build_form(self, name: str) -> None:
        """Replace the fields with those of experiment `name`."""
        self.experiment = name
        self._generation += 1
        self._pause_collector()
        async with self._building:
            self.form_shown = self.form_ready = None
            container = self.query_one("#fields", FieldList)
            await container.remove_children()
            await container.mount_all(self._first_rows(self._field_rows(name)))
            self._fields_shown(name)
        self._mount_rest_after_frame(name)

    def _first_rows(self, rows: list[Widget]) -> list[Widget]:
        """The rows that fill the first screen; the others wait in `_rest`."""
        first = max(ROWS_PER_BATCH, self.app.size.height)
        self._rest = rows[first:]
        return rows[:first]

    def _mount_rest_after_frame(self, name: str) -> None:
        self.form_shown = name
        self.call_after_refresh(self._resume_collector)
        self.call_after_refresh(self._mount_batch, self._generation, name)

    def _pause_collector(self) -> None:
        """No garbage collection until the form's first frame: three full ones, each
        walking every object of the app, took most of the time it took to show."""
        if not self._collector_paused:
            self._collector_paused = True
            collector.pause()

    def _resume_collector(self) -> None:
        if self._collector_paused:
            self._collector_paused = False
            collector.resume()

    def on_unmount(self) -> None:
        """Never leave the collector paused."""
        self._resume_collector()

    async def _mount_batch(self, generation: int, name: str) -> None:
        """Mount the next batch of field rows, then the next after its frame."""
        async with self._building:
            if generation != self._generation or not self.is_mounted:
                return  # another experiment's form replaced this one
            batch, self._rest = self._rest[:ROWS_PER_BATCH], self._rest[ROWS_PER_BATCH:]
            if batch:
                await self.query_one("#fields", FieldList).mount_all(batch)
        if self._rest:
            self.call_after_refresh(self._mount_batch, generation, name)
            return
        self.form_ready = name

    def _field_rows(self, name: str) -> list[Widget]:
        """The rows of experiment `name`'s fields, each drawn as text until it is edited
        (kept in `sections`; `widgets` gets each field's editor once it has one)."""
        raw = self.tb.project.raw_experiment(name)
        self._built_with = self.tb.registry
        self.sections = form_sections(raw, self._built_with)
        self.widgets.clear()
        self.errors.clear()
        self._previewed.clear()
        rows: list[Widget] = []
        number = 0
        for section in self.sections:
            rows.append(Label(safe_text(section.title), classes="section"))
            for form_field in section.fields:
                number += 1
                preview = FieldPreview(
                    visible(form_field.spec.name),
                    form_field.kind,
                    _shown_value(form_field),
                    visible(_help(form_field)),
                    id=f"preview-{number}",
                )
                self._previewed[f"preview-{number}"] = (form_field, number)
                rows.append(preview)
        return rows

    @on(FieldPreview.Opened)
    async def _preview_opened(self, event: FieldPreview.Opened) -> None:
        await self._open_field(event.preview)

    async def _open_field(self, preview: FieldPreview) -> Widget | None:
        """Put the real row (label, editor, help) in place of `preview`; its editor, which
        takes the focus if the preview had it."""
        entry = self._previewed.pop(preview.id or "", None)
        fields = preview.parent
        if entry is None or not isinstance(fields, FieldList):
            return None
        form_field, number = entry
        editor = _editor(form_field, f"field-{number}")
        note = Static(safe_text(_help(form_field)), classes="field-help")
        self.widgets[editor.id or ""] = (form_field, editor, note)
        row = Horizontal(
            Label(safe_text(form_field.spec.name), classes="field-name"),
            editor,
            note,
            classes="field",
        )
        await fields.mount(row, after=preview)
        if preview.has_focus:
            editor.focus(scroll_visible=False)  # before the preview goes, taking the focus
        await preview.remove()
        return editor

    async def editor(self, key: str) -> Widget:
        """The editor of the field whose `--set` key is `key` (its row made real if it was
        still a preview). Call once every field is mounted (`form_ready`); KeyError if the
        form has no such field."""
        for form_field, editor, _ in self.widgets.values():
            if form_field.key == key:
                return editor
        for preview_id, (form_field, _) in list(self._previewed.items()):
            if form_field.key == key:
                opened = await self._open_field(self.query_one(f"#{preview_id}", FieldPreview))
                if opened is not None:
                    return opened
        raise KeyError(key)

    def _fields_shown(self, name: str) -> None:
        """What goes with experiment `name`'s fields: its description, the grid's keys, the
        sweep row, no error."""
        raw = self.tb.project.raw_experiment(name)
        self.query_one("#description", Static).update(
            safe_text(str(raw.get("description", "")), multiline=True)
        )
        grid = self.query_one("#grid-key", Select)
        grid.set_options([(safe_text(key), key) for key in grid_keys(self.sections)])
        self._show_sweep(raw)
        self._show_error(None)

    def _show_sweep(self, raw: dict[str, Any]) -> None:
        """Show the sweep row (and what the sweep runs) only for an experiment with a sweep."""
        row = self.query_one("#sweep-row", Horizontal)
        row.display = raw.get("sweep") is not None
        if not row.display:
            return
        try:
            plan = plan_sweep(self.tb.project, self.experiment, self.tb.registry)
            text = f"{plan.spec.describe()}: {run_count(plan.spec)} runs"
        except ConfigError as error:
            text = f"✗ {error}"
        self.query_one("#sweep-note", Static).update(safe_text(text))

    @property
    def runs_sweep(self) -> bool:
        """True when launching runs the experiment's sweep (it has one, and it is ticked)."""
        return bool(
            self.query_one("#sweep-row", Horizontal).display
            and self.query_one("#use-sweep", Checkbox).value
        )

    # --- validation -----------------------------------------------------------------------

    def field_value(self, editor: Widget) -> Any:
        """The current value of a field's editor."""
        if isinstance(editor, Checkbox):
            return editor.value
        if isinstance(editor, Select):
            return None if editor.value is Select.NULL else editor.value
        assert isinstance(editor, Input)
        return editor.value

    def overrides(self) -> list[str]:
        """The `--set` overrides of every field the user changed."""
        result = []
        for form_field, editor, _ in self.widgets.values():
            override = override_for(form_field, self.field_value(editor))
            if override is not None:
                result.append(override)
        return result

    def check_field(self, editor: Widget) -> None:
        """Validate one field on its own and show its error under it."""
        entry = self.widgets.get(editor.id or "")
        if entry is None:
            return
        form_field, _, note = entry
        override = override_for(form_field, self.field_value(editor))
        message = check_override(self.raw, override, self.tb.registry) if override else None
        if message:
            self.errors[form_field.key] = message
            note.update(safe_text(f"✗ {message}"))
        elif self.errors.pop(form_field.key, None) is not None:
            note.update(safe_text(_help(form_field)))
        note.set_class(bool(message), "field-error")
        editor.set_class(bool(message), "-invalid-field")

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    async def _changed(self, event: Input.Changed | Checkbox.Changed | Select.Changed) -> None:
        widget = event.control
        if widget is None:
            return
        if widget.id == "experiment":
            if isinstance(event.value, str) and event.value != self.experiment:
                await self.build_form(event.value)
            return
        self.check_field(widget)

    def _show_error(self, message: str | None) -> None:
        banner = self.query_one("#form-error", Static)
        banner.display = bool(message)
        if message:
            banner.update(safe_text(f"✗ {message}", multiline=True))
            self.query_one("#launch-form", VerticalScroll).scroll_home(animate=False)

    # --- launching ------------------------------------------------------------------------

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        """Validate everything through the config path, then prepare and queue the runs."""
        if self.launching:
            return
        if self.errors:
            key, message = next(iter(self.errors.items()))
            self._show_error(f"{key}: {message}")
            return
        try:
            copies_text = self.query_one("#copies", Input).value.strip() or "1"
            copies = int(copies_text)
            grid = self.query_one("#grid-key", Select).value
            grid_key = grid if isinstance(grid, str) else None
            grid_values = self.query_one("#grid-values", Input).value
            if self.runs_sweep:
                if copies != 1 or grid_key:
                    raise ConfigError(
                        "this experiment runs its sweep: set copies to 1 and no grid, "
                        "or untick sweep"
                    )
                plan = plan_sweep(
                    self.tb.project, self.experiment, self.tb.registry, self.overrides()
                )
                self._start("preparing the sweep (loading data)…")
                self._launch_sweep(plan)
                return
            wanted = variants(
                self.raw,
                self.overrides(),
                copies=copies,
                grid_key=grid_key,
                grid_values=grid_values,
            )
            configs = validate_all(self.tb.project, self.experiment, wanted, self.tb.registry)
        except ValueError:
            self._show_error("copies must be a whole number")
            return
        except ConfigError as error:
            self._show_error(str(error))
            return
        plural = "s" if len(configs) > 1 else ""
        self._start(f"preparing {len(configs)} run{plural} (loading data)…")
        self._launch(configs)

    def _start(self, note: str) -> None:
        self._show_error(None)
        self.launching = True
        self.query_one("#launch", Button).disabled = True
        self.query_one("#launch-note", Static).update(safe_text(note))

    @work(thread=True, exit_on_error=False, name="launching runs")
    def _launch_sweep(self, plan: SweepPlan) -> None:
        app = self.tb
        try:
            launch_sweep(app.engine, prepare_sweep(plan, app.registry))
        except TuneboardError as error:
            app.call_from_thread(self._failed, str(error))
            return
        app.call_from_thread(self._sweep_launched, plan)

    def _sweep_launched(self, plan: SweepPlan) -> None:
        self.launching = False
        count = run_count(plan.spec)
        self.notify(f"launched a {plan.spec.method} sweep of {self.experiment}: {count} runs")
        self.app.post_message(RunsChanged())
        self._leave()

    @work(thread=True, exit_on_error=False, name="launching runs")
    def _launch(self, configs: list[Any]) -> None:
        app = self.tb
        try:
            run_ids = launch_all(app.engine, configs)
        except TuneboardError as error:
            app.call_from_thread(self._failed, str(error))
            return
        app.call_from_thread(self._launched, run_ids)

    def _failed(self, message: str) -> None:
        self.launching = False
        self.query_one("#launch", Button).disabled = False
        self.query_one("#launch-note", Static).update("")
        self._show_error(message)

    def _launched(self, run_ids: list[str]) -> None:
        self.launching = False
        if len(run_ids) == 1:
            self.notify(f"queued run {run_ids[0]} ({self.experiment})")
        else:
            self.notify(f"queued {len(run_ids)} runs of {self.experiment}")
        self.app.post_message(RunsChanged())
        self._leave()

    def _leave(self) -> None:
        """Back to where the form was opened from, unless the user has left it already."""
        if self.is_current:
            self.dismiss()

    def worker_ended(self, worker: Any, state: Any) -> None:
        """A launch that crashed must not leave the form locked."""
        from textual.worker import WorkerState

        if worker.name == "launching runs" and state == WorkerState.ERROR:
            self._failed(f"launch failed: {worker.error}")


class FormScroll(VerticalScroll, can_focus=False):
    """The scrolling form: never focused itself (its fields are; it scrolls to the one
    focused), since focusing or leaving it restyles every field in it."""


def _help(form_field: FormField) -> str:
    return form_field.spec.help or form_field.spec.type_name


def _shown_value(form_field: FormField) -> object:
    """The value a field's preview shows, as its editor would."""
    value = _initial_value(form_field)
    return None if value is Select.NULL else value


def _initial_value(form_field: FormField) -> Any:
    """What a field's editor holds before the user changes it (see `_editor`)."""
    if form_field.kind == "switch":
        return bool(form_field.initial)
    if form_field.kind == "select":
        choices = form_field.spec.choices or ()
        return form_field.initial if form_field.initial in choices else Select.NULL
    return form_field.initial_text


def _set_value(editor: Widget, value: Any) -> None:
    """Give an editor (Input, Select or Checkbox) `value`, unless it holds it already."""
    if isinstance(editor, Input | Select | Checkbox) and editor.value != value:
        editor.value = value


def _editor(form_field: FormField, widget_id: str) -> Widget:
    spec = form_field.spec
    initial = _initial_value(form_field)
    if form_field.kind == "switch":
        return Checkbox("on", initial, id=widget_id, compact=True)
    if form_field.kind == "select":
        choices = spec.choices or ()
        return Select(
            [(safe_text(str(c)), c) for c in choices],
            value=initial,
            allow_blank=form_field.initial not in choices,
            id=widget_id,
            compact=True,
        )
    return Input(
        initial,
        id=widget_id,
        compact=True,
        placeholder="(unset)" if form_field.initial is None else spec.type_name,
        tooltip=safe_text(spec.help) if spec.help else None,
    )
