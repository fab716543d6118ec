"""The app's screens: runs, launch, run detail, compare, SQL, plugins and dialogs."""
