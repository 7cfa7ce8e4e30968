/*
 * eventlog-check: checks the event source "certagent" as the Event Viewer
 * uses it.  Prints its EventMessageFile and TypesSupported, then formats
 * message 1 of that file with the insertion string "eventlog-check line".
 * Exits 0 when the source is registered and the message reads back as the
 * line, 3 when the source is not registered, 1 otherwise.  Used by
 * packaging/windows/test.sh and packaging/msi/test-msi.sh.
 */
#include <stdio.h>
#include <string.h>
#include <windows.h>

#define KEY "SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\certagent"
#define LINE "eventlog-check line"

int
main(void)
{
    char file[MAX_PATH], path[MAX_PATH], text[512];
    DWORD size = sizeof(file), types = 0, tsize = sizeof(types), type = 0;
    const char *args[1] = {LINE};
    HMODULE module;
    HKEY key;
    LONG e;

    if ((e = RegOpenKeyExA(HKEY_LOCAL_MACHINE, KEY, 0, KEY_READ, &key)) != ERROR_SUCCESS) {
        printf("no event source: HKLM\\%s (error %ld)\n", KEY, (long)e);
        return 3;
    }
    e = RegQueryValueExA(key, "EventMessageFile", NULL, &type, (BYTE *)file, &size);
    if (e == ERROR_SUCCESS)
        e = RegQueryValueExA(key, "TypesSupported", NULL, NULL, (BYTE *)&types, &tsize);
    RegCloseKey(key);
    if (e != ERROR_SUCCESS || (type != REG_EXPAND_SZ && type != REG_SZ)) {
        printf("EventMessageFile or TypesSupported missing (error %ld, type %lu)\n", (long)e,
               (unsigned long)type);
        return 1;
    }
    ExpandEnvironmentStringsA(file, path, sizeof(path));
    printf("EventMessageFile: %s\nTypesSupported: %lu\n", path, (unsigned long)types);
    if ((module = LoadLibraryExA(path, NULL, LOAD_LIBRARY_AS_DATAFILE)) == NULL) {
        printf("cannot load %s (error %lu)\n", path, (unsigned long)GetLastError());
        return 1;
    }
    if (FormatMessageA(FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_ARGUMENT_ARRAY, module, 1, 0,
                       text, sizeof(text), (va_list *)args) == 0) {
        printf("no message 1 in %s (error %lu)\n", path, (unsigned long)GetLastError());
        return 1;
    }
    text[strcspn(text, "\r\n")] = '\0';
    printf("message 1: %s\n", text);
    return strcmp(text, LINE) == 0 && types == 7 ? 0 : 1;
}
