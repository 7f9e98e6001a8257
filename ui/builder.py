"""Build a data set in the browser (the Data page's "Build your own"), and fix a run's data
from its confident mistakes (the Evaluate page): both edit a `tlcore.builder` data set."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import streamlit as st

from tlcore import builder, config, data, images, runs
from ui import cache, state, widgets, work
from ui.data_choice import extract_upload, uploads_folder

NEW = ""  # the data set choice that starts a new one
THUMBNAILS_PER_PAGE = 24
THUMBNAILS_PER_ROW = 8
THUMBNAIL_SIDE = 96
OPEN_CLASSES = 4  # with more classes, each starts folded
KEPT_ON_STOP = ("the images added so far are kept: add the same files again to go on (those "
                "already in the class are skipped at once)")
IMAGE_TYPES = [extension.lstrip(".") for extension in images.IMAGE_EXTENSIONS]
# Keys of this module's widgets and of what it keeps between script runs.
CHOICE_WIDGET = "builder_choice"
START_CHOICES = {"": "Nothing: I add classes and images myself", "zip": "A zip I upload now",
                 "folder": "A folder on this server"}


def editor(fresh: bool) -> str | None:
    """Draw the builder; return the newest saved version of the chosen data set, or None
    while there is none or while it has unsaved changes (`fresh`: the kind was just chosen)."""
    st.caption("Make your own classes and fill them with uploads or camera photos. Each "
               "save makes a new version; a trained run keeps the version it learnt from.")
    built = _chosen(fresh)
    if built is None:
        return None
    _say_notice()
    _new_class_form(built)
    contents = built.classes()
    for name in contents:
        _class_card(built, name, contents)
    return _save_row(built, contents)


def _chosen(fresh: bool) -> builder.BuiltDataset | None:
    """Pick one of the visitor's data sets, or start a new one (None until it exists)."""
    owner = state.owner()
    existing = {built.name: built for built in builder.list_built(owner)}
    current = builder.of_source(state.chosen_data_source() or "", owner)
    pending = state.take_pending_built()
    default = pending or (current.name if current else next(iter(existing), NEW))
    key = state.prepare_widget(CHOICE_WIDGET, default, reset=fresh or pending is not None,
                               allowed=[NEW, *existing])
    name = st.selectbox("Your data sets", [*existing, NEW], key=key,
                        format_func=lambda option: option or "Start a new data set")
    if name == NEW:
        _start_form(owner)
        return None
    return existing[name]


def _start_form(owner: str | None) -> None:
    """Name a new data set and what it starts from; create it on the button."""
    starts = {**{key: label for key, label in START_CHOICES.items()
                 if key != "folder" or not config.public_demo()}, **_existing_sets(owner)}
    with st.container(border=True):
        name = st.text_input("Name of the new data set", max_chars=builder.NAME_LENGTH)
        start = st.selectbox("Start from", list(starts), format_func=starts.get)
        upload = (st.file_uploader("Zip of class folders", type=["zip"],
                                   max_upload_size=config.limits().upload_mb)
                  if start == "zip" else None)
        folder = st.text_input("Folder of class folders") if start == "folder" else ""
        if not st.button("Create the data set", type="primary", icon=":material/add:"):
            return
    try:
        builder.check_name(name, "data set name")
        source = start or None
        if start == "zip":
            source = extract_upload(upload) if upload is not None else None
        elif start == "folder":
            source = folder or None
        if start and source is None:
            raise ValueError("choose the zip or the folder to start from first")
        built = builder.create(name, owner)
        if source is not None:
            with work.heavy("Copying the images") as job:
                built.start_from(cache.dataset(source), on_step=job.on_step)
    except ValueError as error:
        widgets.error(error)
        return
    state.set_pending_built(built.name)
    st.rerun()


def _existing_sets(owner: str | None) -> dict[str, str]:
    """Data sets to start from: the demo set, the downloaded ones, the visitor's uploads and
    their built data sets (newest versions), {source: label}."""
    named = {name: source.label for name, source in data.SOURCES.items()
             if not data.needs_download(name)}
    uploads = {source: f"Your upload: {name}"
               for source, name in data.extracted_zips(uploads_folder()).items()}
    built = {str(latest): f"Your data set: {item.name} (version {builder.version_number(latest)})"
             for item in builder.list_built(owner) if (latest := item.latest()) is not None}
    return {**named, **uploads, **built}


def _new_class_form(built: builder.BuiltDataset) -> None:
    """A field and a button that add a class."""
    with st.form("builder-new-class", clear_on_submit=True, border=False):
        field, button = st.columns([4, 1], vertical_alignment="bottom")
        name = field.text_input("New class", placeholder="e.g. cats",
                                max_chars=builder.NAME_LENGTH)
        if button.form_submit_button("Add class", icon=":material/add:") and name:
            _change(lambda: built.add_class(name), f"Class {name.strip()} added.")


def _class_card(built: builder.BuiltDataset, name: str, contents: dict) -> None:
    """One class: its uploader, its camera, its thumbnails and what to do with them."""
    files = contents[name]
    token = _token(name)
    with st.expander(f"**{widgets.plain(name)}**: {widgets.count(len(files), 'image')}",
                     expanded=len(contents) <= OPEN_CLASSES, key=f"class-{token}"):
        rounds = state.builder_round(name)
        uploader, camera = st.columns(2)
        uploads = uploader.file_uploader(f"Add images to {widgets.plain(name)}",
                                         type=IMAGE_TYPES, accept_multiple_files=True,
                                         key=f"upload-{token}-{rounds}",
                                         max_upload_size=config.limits().upload_mb)
        photo = None
        if camera.toggle(f"Use the camera for {widgets.plain(name)}", key=f"camera-on-{token}"):
            photo = camera.camera_input(f"Each photo goes into {widgets.plain(name)}",
                                        key=f"camera-{token}-{rounds}", width=360)
        files_in = [(upload.name, upload.getvalue()) for upload in uploads or []]
        if photo is not None:
            files_in.append(("the camera photo", photo.getvalue()))
        if files_in:
            _add(built, name, files_in)
        if files:
            _thumbnails(built, name, token, files, [other for other in contents if other != name])
        if st.button(f"Remove the class {widgets.plain(name)}", key=f"remove-class-{token}",
                     icon=":material/delete:", type="tertiary"):
            _change(lambda: built.remove_class(name), f"Class {name} removed.")


def _token(name: str) -> str:
    """A class's part of its widgets' keys: hex digits, so that no class's keys can equal
    another's (with the name itself, class `a`'s "remove-class-a" was class-a's "remove-" +
    "class-a")."""
    return hashlib.sha1(name.encode()).hexdigest()[:16]


def _add(built: builder.BuiltDataset, name: str, files: list[tuple[str, bytes]]) -> None:
    """Add uploaded or photographed files to a class, empty the widgets and say how it went."""
    state.next_builder_round(name)  # new widgets: each file is added once
    try:
        with work.heavy("Adding images", kept=KEPT_ON_STOP) as job:
            added, refused = built.add_images(name, files, on_step=job.on_step,
                                              should_stop=job.should_stop)
    except ValueError as error:  # over a limit: nothing was added
        widgets.error(error)
        return
    notice = f"{widgets.count(added, 'image')} added to {name}."
    copies = len(files) - added - len(refused)  # exact unless stopped
    if copies and not job.stopped_because:
        notice += f" {widgets.count(copies, 'file')} skipped: copies of images in the class."
    if job.stopped_because:
        notice += f" Stopped before all were checked: {job.stopped_because}; {KEPT_ON_STOP}."
    if refused:
        notice += " Left out: " + "; ".join(f"{item.path}: {item.reason}" for item in refused)
    state.set_builder_notice(notice, warning=bool(refused or job.stopped_because))
    st.rerun()


def _thumbnails(built: builder.BuiltDataset, name: str, token: str, files: list,
                others: list[str]) -> None:
    """A page of a class's images, each with a box to pick it; remove or move the picked
    (`token`: the class's part of its widgets' keys)."""
    files = sorted(files, key=_added_at)  # the newest last, where a new photo is looked for
    start = 0
    if len(files) > THUMBNAILS_PER_PAGE:
        starts = range(0, len(files), THUMBNAILS_PER_PAGE)
        start = st.selectbox("Showing", starts, key=f"page-{token}", format_func=lambda first:
                             f"images {first + 1}-{min(first + THUMBNAILS_PER_PAGE, len(files))}")
    shown = files[start:start + THUMBNAILS_PER_PAGE]
    picked = []
    for row in range(0, len(shown), THUMBNAILS_PER_ROW):
        columns = st.columns(THUMBNAILS_PER_ROW)
        for offset, (column, path) in enumerate(zip(columns, shown[row:row + THUMBNAILS_PER_ROW])):
            column.image(cache.thumbnail(str(path), THUMBNAIL_SIDE))
            if column.checkbox(f"#{start + row + offset + 1}", key=f"pick-{token}/{path.name}"):
                picked.append(f"{name}/{path.name}")
    remove, target, move = st.columns([2, 2, 2], vertical_alignment="bottom")
    if remove.button(f"Remove the picked ({len(picked)})", key=f"remove-{token}",
                     disabled=not picked, icon=":material/delete:"):
        _change(lambda: built.remove_images(picked), f"{widgets.count(len(picked), 'image')} "
                                                     f"removed from {name}.")
    if not others:
        return
    chosen = target.selectbox("Move the picked to", others, key=f"move-to-{token}")
    if move.button("Move", key=f"move-{token}", disabled=not picked,
                   icon=":material/drive_file_move:"):
        _change(lambda: built.move_images(picked, chosen),
                f"{widgets.count(len(picked), 'image')} moved from {name} to {chosen}.")


def _added_at(path: Path) -> int:
    """When an image came into the data set (its file's time; a copy keeps it)."""
    try:
        return path.stat().st_mtime_ns
    except OSError:  # removed meanwhile (another tab)
        return 0


def _save_row(built: builder.BuiltDataset, contents: dict) -> str | None:
    """Save or discard the unsaved changes; return the version the Train page may use."""
    latest = built.latest()
    if latest is not None and not built.has_changes():
        st.success(f"Saved as version {builder.version_number(latest)}: the Train page "
                   "uses it.", icon=":material/check:")
        return str(latest)
    usable = sum(1 for files in contents.values() if files)
    st.info(f"Not saved yet: {len(contents)} classes, "
            f"{widgets.count(sum(len(files) for files in contents.values()), 'image')}. "
            "A classifier needs at least two classes with images (ten or more each is a good "
            "start).", icon=":material/edit:")
    save, discard = st.columns([1, 1])
    if save.button("Save" if latest is None else "Save as a new version", type="primary",
                   icon=":material/save:", disabled=usable < 2):
        try:
            version = built.save()
            with work.heavy("Checking the saved images") as job:  # as the Train page will
                data.load_dataset(str(version), on_step=job.on_step)
        except ValueError as error:
            widgets.error(error)
            return None
        state.set_data_source(str(version))
        st.rerun()
    if latest is not None and discard.button("Discard the changes", icon=":material/undo:"):
        _change(built.discard, "Changes discarded.")
    return None


def _change(action: Callable[[], object], notice: str) -> None:
    """Do one edit and run the page again, saying `notice` (or why it was refused)."""
    try:
        action()
    except ValueError as error:
        widgets.error(error)
        return
    state.set_builder_notice(notice)
    st.rerun()


def _say_notice() -> None:
    """Say what the last change did (kept over the rerun it asked for)."""
    notice = state.take_builder_notice()
    if notice is not None:
        (st.warning if notice[1] else st.success)(widgets.plain(notice[0]),
                                                 icon=":material/info:")


def mistake_fixes(report: dict, run: runs.Run) -> Callable[[int], None] | None:
    """Above the confident mistakes: which data set their fixes edit, or a button that
    copies the run's data into one; return what to draw under each image, or None."""
    owner = state.owner()
    record = run.info.get("data", {})
    own = builder.of_source(record.get("source", ""), owner)
    built = own or builder.copy_of(record.get("fingerprint", "?"), owner)
    _say_notice()
    if built is None or built.latest() is None:
        st.caption("To remove a wrong image or give it another class, make an editable copy "
                   "of this run's data set (the run keeps its own data).")
        if st.button("Make an editable copy of this data set", icon=":material/edit:"):
            _copy_run_data(run, owner)
        return None
    trained_on = (f"version {builder.version_number(Path(record['source']))}" if own
                  else "its original data set")
    st.caption(f"**Fix**, under each image, removes it from your data set "
               f"**{widgets.plain(built.name)}** or moves it to another class. Each fix makes a "
               f"new version (now version {builder.version_number(built.latest())}); this run "
               f"keeps {trained_on}, the one it was trained on. Train again to use the new "
               "version.")
    return lambda index: _fix_buttons(built, report, run, index)


def _copy_run_data(run: runs.Run, owner: str | None) -> None:
    """Copy a run's data into a new built data set and save it as version 1."""
    try:
        dataset = cache.run_dataset(run)
        built = builder.create(_free_name(f"{dataset.name[:40]} (copy)", owner), owner)
        with work.heavy("Copying the images") as job:
            built.start_from(dataset, on_step=job.on_step)
        version = built.save()
    except ValueError as error:
        widgets.error(error)
        return
    state.set_data_source(str(version))
    state.set_data_kind("built")
    state.set_builder_notice(f"Made {built.name}, version 1: the Train page now uses it.")
    st.rerun()


def _free_name(name: str, owner: str | None) -> str:
    """`name`, or `name 2`, `name 3`...: the first that no data set of the visitor has."""
    taken = {built.name.casefold() for built in builder.list_built(owner)}
    return next(candidate for number in range(1, len(taken) + 2)
                if (candidate := name if number == 1 else f"{name} {number}").casefold()
                not in taken)


def _fix_buttons(built: builder.BuiltDataset, report: dict, run: runs.Run, index: int) -> None:
    """Remove one mistake from the data set, or move it to another class."""
    true_class = run.classes[int(report["labels"][index])]
    predicted = run.classes[int(np.argmax(report["probabilities"][index]))]
    image_id = built.find(report["paths"][index], true_class)
    if image_id is None:
        st.caption("Not in the newest version (removed or moved already).")
        return
    with st.popover("Fix", icon=":material/build:", width="stretch"):
        if st.button("Remove from the data set", key=f"fix-remove-{index}"):
            _revise(lambda: built.revise(remove=[image_id]), f"Removed #{index} from")
        others = [name for name in built.classes() if name != true_class]
        target = st.selectbox("Class", others, key=f"fix-class-{index}",
                              index=others.index(predicted) if predicted in others else 0)
        if st.button(f"Move to class {widgets.plain(target)}", key=f"fix-move-{index}"):
            _revise(lambda: built.revise(move={image_id: target}),
                    f"Moved #{index} to class {target} in")


def _revise(action: Callable[[], Path], done: str) -> None:
    """Make the new version, choose it for the Train page and say so (`done`: "Removed #3
    from", the data set's name follows)."""
    try:
        version = action()
    except ValueError as error:
        widgets.error(error)
        return
    state.set_data_source(str(version))
    state.set_data_kind("built")
    state.set_builder_notice(f"{done} {version.parent.name}: that is version "
                             f"{builder.version_number(version)}, which the Train page now "
                             "uses. This run keeps the version it was trained on.")
    st.rerun()
