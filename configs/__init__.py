"""The configs that ship with EEAP (YAML package data), found by name: ``eeap train translation/dates``,
``eeap configs`` lists them, ``eeap configs copy NAME DEST`` copies one to edit (``eeap.shipped``)."""
